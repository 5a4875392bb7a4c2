// Comma lists of counts on the benchmarks' command lines (--sizes=64,1024).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace bench {

/// The numbers of a comma list of positive integers ("64,1024"; empty items
/// are skipped, so "" gives an empty list). Nothing when an item is not a
/// positive decimal integer, so the caller can name the option at fault
/// instead of dying on an exception.
std::optional<std::vector<size_t>> positive_list(const std::string& list);

} // namespace bench
