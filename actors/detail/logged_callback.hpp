// One callback of a callback-style protocol adapter under asyncio's
// non-fatal error policy: an exception is logged and the connection goes on.
// Shared by the datagram and subprocess adapters (the stream adapter has
// fatal callbacks too and keeps its own rule).
#pragma once

#include "runtime/log.hpp"

#include <exception>

namespace shardwire::detail {

/// Runs `f`; if it throws, logs "<kind>.<callback>() failed: <what>".
template <class F>
void run_logged(const char* kind, const char* callback, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    log::error(kind, ".", callback, "() failed: ", e.what());
  } catch (...) {
    log::error(kind, ".", callback, "() threw a non-standard exception");
  }
}

} // namespace shardwire::detail
