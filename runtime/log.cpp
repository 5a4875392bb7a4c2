#include "runtime/log.hpp"

#include <memory>
#include <mutex>
#include <utility>
#include <unistd.h>

namespace shardwire::log {

namespace {

std::atomic<int> global_level{static_cast<int>(level::warning)};

// The installed sink, if any. Logging is rare (errors, drops, back-off), so
// a mutex around a shared_ptr copy costs nothing that matters; the copy lets
// the sink run outside the lock (a slow sink does not serialise callers
// beyond the pointer copy).
std::mutex sink_mtx;
std::shared_ptr<const sink> installed_sink;

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

sink set_sink(sink fn) {
  auto next = fn ? std::make_shared<const sink>(std::move(fn)) : nullptr;
  std::lock_guard<std::mutex> guard{sink_mtx};
  auto prev = std::exchange(installed_sink, std::move(next));
  return prev ? *prev : sink{};
}

void write(level lvl, std::string_view line) {
  std::shared_ptr<const sink> fn;
  {
    std::lock_guard<std::mutex> guard{sink_mtx};
    fn = installed_sink;
  }
  if (fn) {
    (*fn)(lvl, line);
    return;
  }
  std::string out = prefix(lvl);
  out += line;
  out += '\n';
  // One write(2) per line keeps lines from different threads whole.
  auto rc = ::write(STDERR_FILENO, out.data(), out.size());
  (void)rc;
}

} // namespace shardwire::log
