// Minimal leveled logging to stderr.
//
// CAF's own logger is compiled into Debian's libcaf but costs instructions on
// every resume; shardwire logs only rare events (errors, dropped writes,
// accept back-off), so a plain stderr writer with a global level suffices.
// Thread-safe: each line is formatted first and written with one call.
#pragma once

#include <atomic>
#include <functional>
#include <sstream>
#include <optional>
#include <string>
#include <string_view>

namespace shardwire::log {

enum class level : int {
  quiet = 0,
  error = 1,
  warning = 2,
  info = 3,
  debug = 4
};

/// Returns the current global level (default: warning).
level current() noexcept;

/// Sets the global level; lines above it are discarded cheaply.
void set_level(level x) noexcept;

/// Parses "quiet", "error", "warning", "info" or "debug"; nothing for any
/// other text (parse_args refuses it before a runtime starts).
std::optional<level> parse_level(std::string_view name) noexcept;

/// Receives each enabled line instead of stderr: its level and its text,
/// without the "[shardwire LEVEL] " prefix and without the newline.
/// Called on the thread that logs (a shard, a CAF worker), possibly from
/// several threads at once, so it must be thread-safe and must not log.
using sink = std::function<void(level, std::string_view)>;

/// Sends every line to `fn` from now on (an application's own logger, or a
/// test that asserts on log lines); an empty `fn` restores stderr. Lines
/// being written while the sink changes go to the old or the new one, never
/// to neither. The previous sink is returned.
sink set_sink(sink fn);

/// Writes one line (already formatted) at `lvl`.
void write(level lvl, std::string_view line);

/// Formats `xs...` with operator<< and writes the line if `lvl` is enabled.
template <class... Ts>
void emit(level lvl, const Ts&... xs) {
  if (static_cast<int>(lvl) > static_cast<int>(current())) return;
  std::ostringstream out;
  (out << ... << xs);
  write(lvl, out.str());
}

template <class... Ts>
void error(const Ts&... xs) {
  emit(level::error, xs...);
}

template <class... Ts>
void warning(const Ts&... xs) {
  emit(level::warning, xs...);
}

template <class... Ts>
void info(const Ts&... xs) {
  emit(level::info, xs...);
}

template <class... Ts>
void debug(const Ts&... xs) {
  emit(level::debug, xs...);
}

} // namespace shardwire::log
