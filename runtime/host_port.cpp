#include "runtime/host_port.hpp"

#include <charconv>
#include <system_error>

namespace shardwire {

std::optional<host_port> parse_host_port(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == s.size())
    return std::nullopt;
  auto host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string_view::npos)
    return std::nullopt; // an IPv6 host needs brackets
  auto digits = s.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc{} || ptr != digits.data() + digits.size() || port > 65535)
    return std::nullopt;
  return host_port{std::string{host}, static_cast<uint16_t>(port)};
}

std::string to_string(const host_port& x) {
  if (x.host.find(':') != std::string::npos)
    return "[" + x.host + "]:" + std::to_string(x.port);
  return x.host + ":" + std::to_string(x.port);
}

} // namespace shardwire
