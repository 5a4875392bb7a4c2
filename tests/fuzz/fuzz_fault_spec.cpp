// Fuzz target: the fault text of chaos_proxy's command line
// (--up.latency-ms=200) and of fault_proxy::set, i.e. set_fault's keys and
// values (tools/fault_spec.hpp).
//
// Input: lines ('\n'-separated), each "dir.key=value" (split at the first
// '='; no '=' means an empty value), applied in order to one fault_set.
// Oracles (fault_oracle.hpp): a refused set changes nothing; after every
// set, each field prints and parses back unchanged and to_string rebuilds
// the spec.
#include "tests/fuzz/fault_oracle.hpp"

#include <cstddef>
#include <cstdint>

using namespace shardwire;
using namespace shardwire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  fault_set faults;
  while (!in.empty()) {
    auto line = next_line(in);
    auto eq = line.find('=');
    auto key = line.substr(0, eq);
    auto value =
        eq == std::string_view::npos ? std::string_view{} : line.substr(eq + 1);
    apply_checked(faults, key, value);
    // The unqualified form, as fault_proxy::update(dir, spec) users call it.
    auto spec = faults.up;
    auto before = spec;
    if (set_fault(spec, key, value) && !(spec == before))
      fault_bug("a refused unqualified set changed the spec", key);
    check_spec(spec);
  }
  return 0;
}
