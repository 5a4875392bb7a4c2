#include "runtime/pinned.hpp"

#include <cstdio>

namespace shardwire::detail {

void pinned_violation(const char* what) {
  // A broken threading invariant is a programming error in shardwire or in
  // how an actor was spawned; continuing would corrupt connection state.
  std::fprintf(stderr, "[shardwire FATAL] %s\n", what);
  std::abort();
}

} // namespace shardwire::detail
