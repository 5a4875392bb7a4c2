// Checks of the benchmarks' own options, for a `parse_args` /
// `parse_options` validator. Each prints one line in the wording of
// runtime/config.cpp's checks and returns whether the value is accepted:
//   error: --NAME: VALUE is out of range; accepted LO to HI (see --help)
// The upper bounds a benchmark passes are where a run would exhaust
// memory, descriptors or processes before it measured anything.
#pragma once

#include "bench/number_list.hpp"
#include "runtime/config.hpp"

#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

inline bool check_range(size_t value, size_t lo, size_t hi,
                        std::string_view name, std::string_view unit = "") {
  return shardwire::check_option(
      value >= lo && value <= hi, name,
      std::to_string(value) + " is out of range; accepted " +
          std::to_string(lo) + " to " + std::to_string(hi) + std::string{unit});
}

/// Seconds as a real number: finite, above 0 and at most `hi`.
inline bool check_seconds(double value, double hi, std::string_view name) {
  std::ostringstream text;
  text << value << " is out of range; accepted more than 0 to " << hi
       << " seconds";
  return shardwire::check_option(
      std::isfinite(value) && value > 0 && value <= hi, name, text.str());
}

/// A comma list of counts, each `lo` to `hi`; stored in `*out` when valid.
/// An empty list is refused unless `empty_ok`.
inline bool check_list(const std::string& list, size_t lo, size_t hi,
                       std::string_view name, std::vector<size_t>* out,
                       bool empty_ok = false) {
  auto numbers = positive_list(list);
  bool ok = numbers && (empty_ok || !numbers->empty());
  if (ok)
    for (auto n : *numbers)
      ok = ok && n >= lo && n <= hi;
  if (ok && out != nullptr) *out = *numbers;
  return shardwire::check_option(
      ok, name,
      "'" + list.substr(0, 100) + "' is not a comma list of numbers, each " +
          std::to_string(lo) + " to " + std::to_string(hi));
}

} // namespace bench
