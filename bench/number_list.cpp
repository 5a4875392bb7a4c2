#include "bench/number_list.hpp"

#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace bench {

std::optional<std::vector<size_t>> positive_list(const std::string& list) {
  std::vector<size_t> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    // strtoull alone would take "-1", " 5" and "5x".
    if (item.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    errno = 0;
    auto n = std::strtoull(item.c_str(), nullptr, 10);
    if (errno == ERANGE || n == 0) return std::nullopt;
    out.push_back(static_cast<size_t>(n));
  }
  return out;
}

} // namespace bench
