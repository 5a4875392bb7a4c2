// Errors of the supervisor: its own CAF error category, `supervisor`.
//
// A supervisor that gives up quits with one of these, so a parent that
// monitors or links it sees why. `shardwire::describe` renders them.
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <string>

namespace shardwire {

/// Category of `supervisor_errc` values.
constexpr caf::atom_value supervisor_category = caf::atom("supervisor");

enum class supervisor_errc : uint8_t {
  /// More restarts than `max_restarts` within `period`: the supervisor
  /// stopped all children and escalates to its parent (exit reason).
  max_restarts_exceeded = 1,
  /// A child failed to start while the supervisor started up (exit reason;
  /// the context names the child and its reason).
  start_failed,
  /// A child did not send `child_ready` within its readiness timeout.
  ready_timeout,
  /// No child with that handle or id (reply to a request).
  no_such_child,
  /// A pool request (`start_child`) to a supervisor that is not
  /// simple_one_for_one, or a static-child request to a pool.
  wrong_strategy,
  /// The supervisor is stopping; no child is started any more.
  shutting_down,
  /// A child spec is malformed (no start function, duplicate id ...).
  invalid_spec,
};

std::string to_string(supervisor_errc x);

/// Makes an error of the `supervisor` category; `context` adds detail.
caf::error make_error(supervisor_errc x, std::string context = {});

/// True if `x` is in the `supervisor` category with value `code`.
bool is(const caf::error& x, supervisor_errc code) noexcept;

} // namespace shardwire
