// Checks shared by the fault-spec and control-language fuzz targets: what
// must hold after any `set_fault`, whatever text it was given.
#pragma once

#include "tools/fault_spec.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace shardwire::fuzz {

[[noreturn]] inline void fault_bug(const char* what, std::string_view detail) {
  std::fprintf(stderr, "fault oracle: %s: %.*s\n", what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

/// Every field of `spec` printed by `get_fault` is accepted back by
/// `set_fault` and changes nothing; `to_string` lists exactly the fields
/// that differ from a clean spec, and applying its key=value pairs to a
/// clean spec rebuilds `spec`.
inline void check_spec(const fault_spec& spec) {
  for (auto& key : fault_keys()) {
    auto v = get_fault(spec, key);
    if (v.empty()) fault_bug("get_fault gave nothing for", key);
    auto copy = spec;
    if (auto err = set_fault(copy, key, v))
      fault_bug("set_fault refused what get_fault printed", key + "=" + v);
    if (!(copy == spec)) fault_bug("get/set round trip changed", key);
  }
  auto text = to_string(spec);
  fault_spec rebuilt;
  if (text != "clean") {
    // In to_string's order slice-min comes before slice-max, and a
    // slice-min is never refused while slice-max is still 0.
    size_t pos = 0;
    while (pos <= text.size()) {
      auto end = text.find(' ', pos);
      if (end == std::string::npos) end = text.size();
      auto pair = std::string_view{text}.substr(pos, end - pos);
      auto eq = pair.find('=');
      if (eq == std::string_view::npos) fault_bug("to_string pair", pair);
      if (auto err =
              set_fault(rebuilt, pair.substr(0, eq), pair.substr(eq + 1)))
        fault_bug("set_fault refused to_string's pair", pair);
      pos = end + 1;
    }
  }
  if (!(rebuilt == spec)) fault_bug("to_string does not rebuild", text);
  if (spec.is_clean() != (text == "clean"))
    fault_bug("is_clean disagrees with to_string", text);
  // Invariants set_fault promises.
  if (spec.slice_max > 0 && spec.slice_min > spec.slice_max)
    fault_bug("slice-min above slice-max accepted", text);
}

/// Applies one "dir.key" = value to `faults` and checks the outcome: on
/// error nothing changed, on success both directions are still valid.
inline void apply_checked(fault_set& faults, std::string_view qualified,
                          std::string_view value) {
  auto before = faults;
  if (auto err = set_fault(faults, qualified, value)) {
    if (!(faults == before))
      fault_bug("a refused set changed the faults", qualified);
  }
  check_spec(faults.up);
  check_spec(faults.down);
}

/// Takes the next line (without its '\n') off the front of `in`.
inline std::string_view next_line(std::string_view& in) {
  auto nl = in.find('\n');
  auto line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  return line;
}

} // namespace shardwire::fuzz
