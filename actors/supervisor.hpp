// A supervisor actor for ordinary actors and OS processes (OTP's model).
//
// Every child is a CAF actor, started by a `child_spec::start` function. A
// process child is an actor that owns its OS process (transports/), so the
// same strategies, intensity and escalation cover both.
//
// Threading: the supervisor is an ordinary event-based actor on CAF's
// scheduler, not pinned to a shard. `start` functions run inside it, one at
// a time, and must not block. The supervisor monitors (never links) its
// children and decides restarts itself.
//
// Ordering guarantees (tests/actors/supervisor_test.cpp):
// - children start in spec order; the next `start` is called only after the
//   previous child is started (ready, see `readiness`);
// - children stop in reverse start order; the next stop begins only after
//   the previous child is down (on shutdown, escalation and for the
//   one_for_all / rest_for_one strategies);
// - restarts are delayed by non-blocking timers, never by blocking.
//
// Shutdown: an exit message with a non-normal reason (e.g.
// `exit_reason::user_shutdown`), trapped by the supervisor, makes it stop
// every child in reverse order and then quit with that reason. If the
// supervisor dies without that (`exit_reason::kill`, an exception), it kills
// every child that is still alive from its `on_exit`.
#pragma once

#include "actors/supervision/backoff.hpp"
#include "actors/supervision/errors.hpp"
#include "actors/supervision/intensity.hpp"
#include "actors/supervision/messages.hpp"
#include "actors/supervision/restart.hpp"

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shardwire {

/// What a `start` function gets. Valid only during the call.
struct child_context {
  caf::actor_system& system;
  /// The supervisor: the child sends `child_ready{id}` here.
  caf::actor supervisor;
  /// The child's id: the spec's id, or for a pool child `<spec id>#<n>`.
  std::string id;
  /// The argument of `start_child` (pool children); empty otherwise.
  caf::message arg;
};

/// How the supervisor stops a child.
struct shutdown_policy {
  enum kind_t : uint8_t { brutal_kill, timeout, infinity };
  kind_t kind = timeout;
  /// For `timeout`: time between the `user_shutdown` exit message and the
  /// `kill`.
  std::chrono::milliseconds grace{5'000};

  /// Exit message with `exit_reason::kill` at once.
  static shutdown_policy kill() {
    return {brutal_kill, std::chrono::milliseconds{0}};
  }
  /// Exit message with `exit_reason::user_shutdown`, then `exit_reason::kill`
  /// if the child is not down after `grace`.
  static shutdown_policy after(std::chrono::milliseconds grace) {
    return {timeout, grace};
  }
  /// Exit message with `exit_reason::user_shutdown`, then wait for ever
  /// (the default for a child that is itself a supervisor).
  static shutdown_policy wait() {
    return {infinity, std::chrono::milliseconds{0}};
  }
};

/// When a started child counts as started.
struct readiness_policy {
  enum kind_t : uint8_t { immediate, wait_for_ready, min_run_time };
  kind_t kind = immediate;
  /// `wait_for_ready`: deadline for `child_ready`; `min_run_time`: how long
  /// the child must stay up.
  std::chrono::milliseconds time{0};

  /// As soon as `start` returned a handle.
  static readiness_policy now() {
    return {immediate, std::chrono::milliseconds{0}};
  }
  /// When the child sends `child_ready{id}`; no message within `timeout`
  /// is a failed start (the child is stopped with its shutdown policy).
  static readiness_policy ready_message(std::chrono::milliseconds timeout) {
    return {wait_for_ready, timeout};
  }
  /// When the child has stayed up for `t`; an exit before is a failed start.
  static readiness_policy after(std::chrono::milliseconds t) {
    return {min_run_time, t};
  }
};

/// Starts one child; runs inside the supervisor. Returns the child's handle
/// or why it could not start. Must not block; may throw (a failed start).
using child_start_fn = std::function<caf::expected<caf::actor>(child_context&)>;

/// One child of a supervisor (the template child of a pool).
struct child_spec {
  std::string id;
  child_start_fn start;
  restart_type restart = restart_type::permanent;
  shutdown_policy shutdown = shutdown_policy::after(std::chrono::seconds(5));
  readiness_policy readiness = readiness_policy::now();
};

/// How the failure of one child affects its siblings.
enum class supervision_strategy : uint8_t {
  /// Only the failed child is restarted.
  one_for_one,
  /// All children are stopped (reverse order) and all restarted (in order).
  one_for_all,
  /// The failed child and those started after it are stopped (reverse
  /// order) and restarted (in order).
  rest_for_one,
  /// A dynamic pool of children from one template spec (`children[0]`),
  /// started by `start_child`; each is restarted on its own.
  simple_one_for_one,
};

std::string to_string(supervision_strategy x);

/// Everything a supervisor needs.
struct supervisor_spec {
  supervision_strategy strategy = supervision_strategy::one_for_one;
  /// Static children in start order; for simple_one_for_one exactly one
  /// template.
  std::vector<child_spec> children;
  restart_intensity intensity;
  backoff_policy backoff;
  /// Seed of the jitter PRNG; 0 picks a random seed.
  uint64_t seed = 0;
  /// Receives the events of actors/supervision/messages.hpp; may be empty.
  caf::actor observer;
  /// Clock for intensity periods and backoff resets (tests pass a fake
  /// one); called inside the supervisor. Default: steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
  /// Set by `supervisor_child`: the supervisor sends `child_ready{ready_id}`
  /// to `ready_to` once its initial children are started.
  caf::actor ready_to;
  std::string ready_id;
};

/// Spawns a supervisor on CAF's scheduler. It starts its children at once,
/// in order; use `await_started` (or the `supervisor_started` event) to
/// learn when they are all up. Returns an error for a malformed spec (no
/// children for a pool, a child without `start`, duplicate ids).
caf::expected<caf::actor> spawn_supervisor(caf::actor_system& sys,
                                           supervisor_spec spec);

/// A child spec that runs a nested supervisor: permanent, shutdown
/// `wait()`, ready when the nested supervisor has started all its children
/// (within `ready_timeout`).
child_spec supervisor_child(
    std::string id, supervisor_spec spec,
    std::chrono::milliseconds ready_timeout = std::chrono::seconds(60));

} // namespace shardwire
