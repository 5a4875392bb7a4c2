// What a receiver does with a decoded value besides handling it: print it
// (logs, test output) and render its errors and addresses. Fuzz targets call
// `exercise` on every value they decoded, so that these renderers meet
// values no local code would build (an endpoint family out of range, an
// error of an unknown category with a nested message ...).
#pragma once

#include "actors/endpoint.hpp"
#include "actors/errors.hpp"
#include "actors/supervision/messages.hpp"

#include <caf/deep_to_string.hpp>
#include <caf/optional.hpp>

#include <type_traits>
#include <vector>

namespace shardwire::fuzz {

inline void exercise_endpoint(const endpoint& x) {
  (void)to_string(x);
  (void)python_repr(x);
}

template <class T>
void exercise(const T& x) {
  (void)caf::deep_to_string(x);
  if constexpr (std::is_same_v<T, endpoint>) exercise_endpoint(x);
  if constexpr (requires { x.reason; }) (void)describe(x.reason);
  if constexpr (requires { x.peername; }) {
    exercise_endpoint(x.peername);
    exercise_endpoint(x.sockname);
  }
  if constexpr (requires { x.info.peername; }) {
    exercise_endpoint(x.info.peername);
    exercise_endpoint(x.info.sockname);
  }
  if constexpr (std::is_same_v<T, caf::optional<endpoint>>) {
    if (x) exercise_endpoint(*x);
  }
  if constexpr (requires { x.peer; }) exercise(x.peer);
  if constexpr (std::is_same_v<T, child_info>) (void)to_string(x.state);
  if constexpr (std::is_same_v<T, std::vector<child_info>>) {
    for (auto& c : x)
      exercise(c);
  }
}

} // namespace shardwire::fuzz
