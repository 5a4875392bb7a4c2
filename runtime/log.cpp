#include "runtime/log.hpp"

#include <unistd.h>

namespace shardwire::log {

namespace {

std::atomic<int> global_level{static_cast<int>(level::warning)};

const char* prefix(level lvl) {
  switch (lvl) {
  case level::error:
    return "[shardwire ERROR] ";
  case level::warning:
    return "[shardwire WARN] ";
  case level::info:
    return "[shardwire INFO] ";
  default:
    return "[shardwire DEBUG] ";
  }
}

} // namespace

level current() noexcept {
  return static_cast<level>(global_level.load(std::memory_order_relaxed));
}

void set_level(level x) noexcept {
  global_level.store(static_cast<int>(x), std::memory_order_relaxed);
}

std::optional<level> parse_level(std::string_view name) noexcept {
  if (name == "quiet") return level::quiet;
  if (name == "error") return level::error;
  if (name == "warning") return level::warning;
  if (name == "info") return level::info;
  if (name == "debug") return level::debug;
  return std::nullopt;
}

void write(level lvl, std::string_view line) {
  std::string out = prefix(lvl);
  out += line;
  out += '\n';
  // One write(2) per line keeps lines from different threads whole.
  auto rc = ::write(STDERR_FILENO, out.data(), out.size());
  (void)rc;
}

} // namespace shardwire::log
