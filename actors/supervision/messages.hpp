// Messages of the supervisor: what children send it, the requests it
// answers, and the events it reports to an observer.
//
// All types are copyable, have a CAF `inspect` overload and are registered
// by `register_supervision_types` (called from `shardwire::register_types`).
#pragma once

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace caf {
class actor_system_config;
} // namespace caf

namespace shardwire {

// -- sent by children ---------------------------------------------------------

/// A child with `readiness::wait_for_ready` sends this to its supervisor
/// (`child_context::supervisor`) once it is ready, with its own
/// `child_context::id`. Until then the supervisor starts no later child.
/// A `child_ready` for a child that is not starting is ignored.
struct child_ready {
  std::string id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_ready& x) {
  return f(caf::meta::type_name("child_ready"), x.id);
}

/// A starting child that needs longer (systemd's EXTEND_TIMEOUT_USEC=): the
/// supervisor's deadline for its `child_ready` (or, while it stops, for its
/// exit before the kill) moves to at least `extra` from now. Never shortens
/// a deadline; ignored for a child that is neither starting nor stopping.
struct child_extend_timeout {
  std::string id;
  caf::timespan extra{0};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_extend_timeout& x) {
  return f(caf::meta::type_name("child_extend_timeout"), x.id, x.extra);
}

// -- requests -----------------------------------------------------------------

/// Pool only (simple_one_for_one): start one more child from the template
/// spec with `arg` as its start argument. Replies with the child's handle
/// once it is started (ready), or with an error (`wrong_strategy`,
/// `shutting_down`, or why its start failed).
struct start_child {
  caf::message arg;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_child& x) {
  return f(caf::meta::type_name("start_child"), x.arg);
}

/// Stop one child by handle or, when `handle` is empty, by id, using its
/// shutdown policy. A pool child is forgotten afterwards; a static child
/// keeps its spec and stays stopped until `restart_child`. Replies with the
/// child's `child_info` once it is down, or `no_such_child`.
struct terminate_child {
  caf::actor handle;
  std::string id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, terminate_child& x) {
  return f(caf::meta::type_name("terminate_child"), x.handle, x.id);
}

/// Static children only: start a stopped child again (after
/// `terminate_child`, or a transient/temporary child that exited). Replies
/// with its handle once started, or an error.
struct restart_child {
  std::string id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, restart_child& x) {
  return f(caf::meta::type_name("restart_child"), x.id);
}

/// Replies with one `child_info` per child, in start order.
struct which_children {};

/// Replies with `child_counts`.
struct count_children {};

/// Replies with `which_children`'s answer once the initial children are all
/// started, or with the error that made the start fail.
struct await_started {};

/// Where a child is in its life.
enum class child_state : uint8_t {
  /// Not running and not about to be (terminated, or exited for good).
  stopped,
  /// `start` returned; waiting for `child_ready` or the minimum run time.
  starting,
  /// Started (ready).
  running,
  /// Being stopped by the supervisor.
  stopping,
  /// Down, with a restart scheduled (backoff delay or ordered restart).
  restarting,
};

std::string to_string(child_state x);

/// One row of `which_children`.
struct child_info {
  std::string id;
  /// Empty unless the child is alive.
  caf::actor handle;
  child_state state = child_state::stopped;
  /// Restarts of this child so far.
  uint32_t restarts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("child_info"), x.id, x.handle, x.state,
           x.restarts);
}

/// Reply to `count_children` (OTP's count_children).
struct child_counts {
  /// Child specs (static) or pool children (simple_one_for_one).
  uint32_t specs = 0;
  /// Alive children.
  uint32_t active = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_counts& x) {
  return f(caf::meta::type_name("child_counts"), x.specs, x.active);
}

// -- events for the observer --------------------------------------------------
//
// Sent to `supervisor_spec::observer` (if set) in the order they happen.

/// A child is started (ready).
struct child_started {
  std::string id;
  caf::actor handle;
  /// Restarts of this child before this start.
  uint32_t restarts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_started& x) {
  return f(caf::meta::type_name("child_started"), x.id, x.handle, x.restarts);
}

/// A start failed: `start` returned an error, the child exited before it
/// was ready, or it did not signal ready in time (`ready_timeout`).
struct child_start_failed {
  std::string id;
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_start_failed& x) {
  return f(caf::meta::type_name("child_start_failed"), x.id, x.reason);
}

/// A started child is down. `requested` is true when the supervisor had
/// asked it to stop (shutdown, strategy, terminate_child).
struct child_exited {
  std::string id;
  caf::error reason;
  bool requested = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_exited& x) {
  return f(caf::meta::type_name("child_exited"), x.id, x.reason, x.requested);
}

/// A child that failed will be restarted after `delay` (the backoff delay,
/// jitter included); `attempt` counts consecutive restarts since the last
/// stable run, starting at 1.
struct child_restarting {
  std::string id;
  caf::timespan delay{0};
  uint32_t attempt = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_restarting& x) {
  return f(caf::meta::type_name("child_restarting"), x.id, x.delay, x.attempt);
}

/// The initial children are all started.
struct supervisor_started {};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_started&) {
  return f(caf::meta::type_name("supervisor_started"));
}

/// The supervisor gives up: it stops all children and quits with `reason`.
struct escalated {
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, escalated& x) {
  return f(caf::meta::type_name("escalated"), x.reason);
}

// -- inspection of the empty requests -----------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, which_children&) {
  return f(caf::meta::type_name("which_children"));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, count_children&) {
  return f(caf::meta::type_name("count_children"));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, await_started&) {
  return f(caf::meta::type_name("await_started"));
}

/// Registers every type above with `cfg`.
void register_supervision_types(caf::actor_system_config& cfg);

} // namespace shardwire
