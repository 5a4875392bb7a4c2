// Fuzz target: chaos_proxy's control channel, one session of lines, through
// the control-language parser (tools/fault_control.hpp) that
// fault_proxy::execute uses, applied to a model fault_set the way execute
// applies commands to a live proxy (no sockets, no actors).
//
// Input: the bytes a control client sends; lines end with '\n' and lose a
// trailing "\r" / " " as in demos/chaos_proxy.cpp.
// Oracles, besides the sanitizers: a no-op line really is blank or a
// comment; `get` only names known keys, and answers non-empty; errors carry
// a message; every `set` keeps the invariants of fault_oracle.hpp.
#include "tests/fuzz/fault_oracle.hpp"
#include "tools/fault_control.hpp"

#include <cctype>
#include <cstddef>
#include <cstdint>

using namespace shardwire;
using namespace shardwire::fuzz;

namespace {

bool blank_or_comment(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
    ++i;
  return i == line.size() || line[i] == '#';
}

void run(fault_set& faults, std::string_view line) {
  auto cmd = parse_control_line(line);
  if (std::holds_alternative<control_noop>(cmd)) {
    if (!blank_or_comment(line)) fault_bug("no-op for a command", line);
  } else if (blank_or_comment(line)) {
    fault_bug("a blank or comment line parsed as a command", line);
  } else if (auto* x = std::get_if<control_error>(&cmd)) {
    if (x->message.empty()) fault_bug("error without message", line);
  } else if (auto* x = std::get_if<control_set>(&cmd)) {
    apply_checked(faults, x->qualified_key, x->value);
  } else if (auto* x = std::get_if<control_get>(&cmd)) {
    if (get_fault(faults[x->dir], x->key).empty())
      fault_bug("get of an unknown key parsed", line);
  } else if (std::holds_alternative<control_clear>(cmd)) {
    faults = fault_set{};
  } else if (std::holds_alternative<control_faults>(cmd)) {
    (void)to_string(faults.up);
    (void)to_string(faults.down);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  fault_set faults;
  while (!in.empty()) {
    auto line = next_line(in);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.remove_suffix(1);
    run(faults, line);
  }
  return 0;
}
