// The text control language of a fault proxy (chaos_proxy's control channel
// and stdin, `fault_proxy::execute`), parsed into a command value.
//
// Parsing is separate from running so that the bytes a control client sends
// meet a pure function: no runtime, no sockets, no actors. This is what the
// fuzz target tests/fuzz/fuzz_fault_control.cpp exercises; `execute` runs
// the command against a live proxy.
//
// Grammar (words are separated by ASCII white space, see std::isspace):
//   set <up|down|both>.<key> <value>
//   get <up|down>.<key>
//   faults | status | clear | reset-all | sever | help
// An empty line, or one whose first word starts with '#', is a no-op.
//
// Pure values and functions: no threads, no shared state.
#pragma once

#include "tools/fault_spec.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace shardwire {

/// An empty line or a comment: answered "OK", even by a stopped proxy.
struct control_noop {};

/// `set <dir>.<key> <value>`; the key and value are checked when the set
/// is applied (`set_fault`), since slice-min/slice-max depend on the
/// faults in force.
struct control_set {
  std::string qualified_key;
  std::string value;
};

/// `get <dir>.<key>` with a known direction and key (one of `fault_keys`).
struct control_get {
  fault_direction dir = fault_direction::up;
  std::string key;
};

/// `faults`: both directions' faults.
struct control_faults {};

/// `status`: the proxy's counters.
struct control_status {};

/// `clear` or `reset-all`: every fault removed.
struct control_clear {};

/// `sever`: every live connection reset.
struct control_sever {};

/// `help`: the command list.
struct control_help {};

/// A line that is not a command; `message` follows "ERR " in the reply.
struct control_error {
  std::string message;
};

using control_command =
    std::variant<control_noop, control_set, control_get, control_faults,
                 control_status, control_clear, control_sever, control_help,
                 control_error>;

/// Parses one line (without its newline; any bytes, never throws except
/// std::bad_alloc).
control_command parse_control_line(std::string_view line);

/// The `help` text: one or more lines, each ending in '\n'.
std::string_view control_help_text() noexcept;

} // namespace shardwire
