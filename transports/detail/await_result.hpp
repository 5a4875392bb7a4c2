// The blocking variants of the async_ calls (create_connection,
// create_datagram_endpoint, subprocess_exec, ...): start the async call and
// wait on the calling thread for its one callback.
#pragma once

#include "actors/errors.hpp"
#include "runtime/shard.hpp"

#include <caf/expected.hpp>

#include <functional>
#include <future>
#include <memory>
#include <string>

namespace shardwire::detail {

/// Runs `start` with a callback and blocks until that callback ran once.
/// Refused on a shard thread (it would wait on itself); `what` names the
/// call in that error. If the callback is destroyed without running (the
/// runtime stopped first), the result is sw_errc::shutdown.
template <class T>
caf::expected<T> await_result(
    const std::function<void(std::function<void(caf::expected<T>)>)>& start,
    const char* what) {
  if (shard::current() != nullptr)
    return make_error(sw_errc::invalid_argument,
                      std::string{"blocking "} + what +
                          " called on a shard thread; use the async_ variant");
  auto result = std::make_shared<std::promise<caf::expected<T>>>();
  auto fut = result->get_future();
  start([result](caf::expected<T> x) { result->set_value(std::move(x)); });
  try {
    return fut.get();
  } catch (const std::future_error&) {
    return make_error(sw_errc::shutdown,
                      std::string{"runtime stopped during "} + what);
  }
}

} // namespace shardwire::detail
