// kv_cluster's client line protocol, as pure functions: no actors, no CAF,
// no I/O. The front (kv_cluster.cpp) frames bytes into lines with
// `line_reader` and turns each line into a `parsed_line`; a fuzz target can
// drive exactly the same code with arbitrary bytes.
//
//   SET k v   -> a set request; v is the rest of the line, spaces included
//   GET k     -> a get request (nothing may follow the key)
//   DEL k     -> a del request (nothing may follow the key)
//   PING      -> ping
//   anything else, or a missing key -> error ("ERR bad request")
//
// Words are separated by single spaces; lines end with '\n', and one '\r'
// before it is dropped. Keys and values are raw bytes (no escaping).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kv {

/// What a request asks a storage node to do.
enum class op : uint8_t { set, get, del };

/// The meaning of one client line.
struct parsed_line {
  enum kind_t : uint8_t { request, ping, error };

  kind_t kind = error;
  /// For `request`: the operation, its non-empty key and (SET) its value.
  op what = op::get;
  std::string key;
  std::string value;
};

/// Parses one line (without its '\n'; a trailing '\r' must already be
/// removed). Total: every input gives a result, never throws except
/// std::bad_alloc.
parsed_line parse_line(std::string_view line);

/// Splits a byte stream into lines, keeping the unterminated tail between
/// calls. A line longer than `max_line` bytes (not counting '\n') that has not
/// ended yet makes `feed` return false: the caller answers an error and
/// closes, so one client cannot grow the buffer without bound.
class line_reader {
public:
  static constexpr size_t default_max_line = 64 * 1024;

  explicit line_reader(size_t max_line = default_max_line)
      : max_line_(max_line) {}

  /// Appends `bytes` and calls `on_line(std::string_view)` for each complete
  /// line, in order, with '\n' and one trailing '\r' removed. The view is
  /// valid only during the call. Returns false if the buffered unterminated
  /// tail now exceeds `max_line` (the lines before it were delivered).
  template <class F>
  bool feed(std::string_view bytes, F&& on_line) {
    in_.append(bytes);
    size_t start = 0;
    for (;;) {
      auto nl = in_.find('\n', start);
      if (nl == std::string::npos) break;
      auto line = std::string_view{in_}.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      on_line(line);
      start = nl + 1;
    }
    in_.erase(0, start);
    return in_.size() <= max_line_;
  }

  /// At end of stream: delivers an unterminated last line, if any, as a line
  /// (a client that half-closes after "PING" without '\n' is answered).
  template <class F>
  void finish(F&& on_line) {
    if (in_.empty()) return;
    std::string last = std::move(in_);
    in_.clear();
    std::string_view line{last};
    if (line.back() == '\r') line.remove_suffix(1);
    on_line(line);
  }

  /// Bytes of an unterminated line buffered so far.
  size_t pending() const noexcept { return in_.size(); }

private:
  size_t max_line_;
  std::string in_;
};

} // namespace kv
