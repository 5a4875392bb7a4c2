// Runs transport actors on the test thread, deterministically: a CAF actor
// system with the test coordinator, one shard adopted by the test thread,
// and a loop that runs until nothing is left to do (no sockets, no threads,
// no sleeps). The transport core's unit tests use it with the scripted
// backend (scripted_backend.hpp); it is how the simulator drives its hosts
// (sim/detail/core.cpp, sim/network.cpp), reduced to one host.
//
// Also here: a recording protocol actor whose log, replies and held data the
// test reads and steers, and requests from the test (a helper actor on the
// shard makes them, since a blocking scoped actor would wait forever on a
// loop that only the test thread runs).
//
// Everything is test-thread only. Handles to actors must not outlive the
// actor system: whatever the test keeps (protocol_record's handles, requests
// in flight) is dropped by `teardown`, which the destructor runs.
#pragma once

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/protocol.hpp"
#include "runtime/pinned.hpp"
#include "runtime/shard.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/response_promise.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace shardwire::test {

// -- the recording protocol ---------------------------------------------------

/// What one recording protocol saw, and how it answers. Shared by the test
/// and the protocol actor; test thread only.
struct protocol_record {
  /// Prefix of this protocol's events in `log` ("" for the first one).
  std::string name;
  /// Events in the order handled: "connected", "data:<bytes>", "eof",
  /// "pause", "resume", "lost" or "lost:<describe(reason)>", each with
  /// `name` in front. Several protocols (set_protocol) may share one log.
  std::shared_ptr<std::vector<std::string>> log =
      std::make_shared<std::vector<std::string>>();
  /// This protocol's events only (without `name`).
  std::vector<std::string> own;
  caf::error lost_reason;
  int lost_count = 0;

  // -- how it answers ------------------------------------------------------

  /// Reply to `eof`: true keeps the transport half-open.
  bool eof_reply = false;
  /// Answer `connected` only when the test calls ack_connected().
  bool hold_connected = false;
  /// Keep each `data` message's read credit until release_data().
  bool hold_data = false;
  /// Quit after `lost` (as protocols do). false keeps the actor alive, so
  /// that a message after `lost` would be logged.
  bool quit_on_lost = true;
  /// Runs inside the handler after each event is logged (the protocol may
  /// send to its transport from there, as a real one would).
  std::function<void(protocol_record&, const std::string&)> on_event;

  // -- handles -------------------------------------------------------------

  transport_actor transport; // from `connected`
  protocol_actor self;       // set by the factory
  /// The protocol actor itself, valid only inside its handlers (on_event):
  /// lets a test make the protocol quit or fail.
  protocol_actor::pointer actor = nullptr;
  caf::response_promise pending_ack;
  std::vector<read_ticket> held;

  /// Answers a held `connected` (the transport starts reading).
  void ack_connected() {
    if (pending_ack.pending()) pending_ack.deliver(caf::unit);
  }

  /// Drops the held read credit (the transport may read again).
  void release_data() { held.clear(); }

  /// Drops every handle (before the actor system goes).
  void drop_handles() {
    pending_ack = caf::response_promise{};
    held.clear();
    transport = nullptr;
    self = nullptr;
    on_event = nullptr;
  }

  void add(protocol_actor::pointer self_ptr, std::string ev) {
    own.push_back(ev);
    log->push_back(name + ev);
    if (on_event) {
      actor = self_ptr;
      auto copy = own.back();
      on_event(*this, copy);
      actor = nullptr;
    }
  }
};

using record_ptr = std::shared_ptr<protocol_record>;

inline protocol_actor::behavior_type
recording_protocol_impl(protocol_actor::pointer self, record_ptr rec) {
  return {
      [self, rec](connected& msg) -> caf::result<void> {
        rec->transport = msg.transport;
        caf::result<void> res;
        if (rec->hold_connected) {
          rec->pending_ack = self->make_response_promise();
          res = caf::result<void>{rec->pending_ack};
        }
        rec->add(self, "connected");
        return res;
      },
      [self, rec](data& msg) {
        if (rec->hold_data) rec->held.push_back(std::move(msg.ticket));
        rec->add(self, "data:" + msg.bytes.str());
      },
      [self, rec](eof) {
        rec->add(self, "eof");
        return rec->eof_reply;
      },
      [self, rec](shardwire::pause) { rec->add(self, "pause"); },
      [self, rec](shardwire::resume) { rec->add(self, "resume"); },
      [self, rec](lost& msg) {
        ++rec->lost_count;
        rec->lost_reason = msg.reason;
        rec->add(self, msg.reason ? "lost:" + describe(msg.reason) : "lost");
        if (rec->quit_on_lost) self->quit();
      },
  };
}

/// A factory for a recording protocol writing into `rec`.
inline protocol_factory recording_protocol(record_ptr rec) {
  return [rec](shard& s) -> protocol_actor {
    auto hdl = spawn_fun_on(s, recording_protocol_impl, rec);
    rec->self = hdl;
    return hdl;
  };
}

// -- the harness --------------------------------------------------------------

/// The answer to a request made with core_harness::request.
template <class R>
struct reply {
  bool done = false;
  caf::error err; // the error, if the request failed
  std::optional<R> value;
};

class core_harness {
public:
  /// `fast_path` unset: what SHARDWIRE_FAST_PATH says (on unless "0"), as
  /// for runtimes; the CTest twin `<test>_queued` runs with it off.
  explicit core_harness(std::optional<bool> fast_path = std::nullopt) {
    auto cfg = std::make_unique<config>();
    cfg->set("scheduler.policy", caf::atom("testing"));
    cfg_ = std::move(cfg);
    sys_ = std::make_unique<caf::actor_system>(*cfg_);
    shard_ = std::make_unique<shard>(*sys_, 0, 64);
    if (!fast_path) {
      const char* env = std::getenv("SHARDWIRE_FAST_PATH");
      fast_path = env == nullptr || std::string_view{env} != "0";
    }
    shard_->set_fast_path(*fast_path);
    shard_->adopt_thread();
    // Fast-path deliveries reuse this thread's mailbox elements, as on a
    // shard thread (the simulator installs its own the same way).
    prev_spares_ = shardwire::detail::spares;
    if (*fast_path) shardwire::detail::spares = &spares_;
  }

  ~core_harness() { teardown(); }

  core_harness(const core_harness&) = delete;
  core_harness& operator=(const core_harness&) = delete;

  caf::actor_system& system() { return *sys_; }

  shard& home() { return *shard_; }

  bool fast_path() const { return shard_->fast_path(); }

  /// Runs posted jobs (readiness, actor drains) and CAF's scheduler until
  /// neither has anything left; returns whether anything ran.
  bool run() {
    bool any = false;
    auto& sched = coordinator();
    for (;;) {
      bool progress = shard_->poll() > 0;
      while (sched.try_run_once())
        progress = true;
      if (!progress) return any;
      any = true;
    }
  }

  /// Pinned actors alive on the shard (transports only if asked).
  size_t live_actors(bool transports_only = false) const {
    return shard_->live_actors(transports_only);
  }

  /// Runs `f` in teardown, before the actor system goes (drop handles).
  void on_teardown(std::function<void()> f) { drops_.push_back(std::move(f)); }

  /// Sends `msg` as a request to `hdl` from a helper actor on the shard;
  /// the reply is filled in by a later run(). `R` is the result type,
  /// caf::unit_t for none.
  template <class R, class Handle, class Msg>
  std::shared_ptr<reply<R>> request(const Handle& hdl, Msg msg) {
    auto out = std::make_shared<reply<R>>();
    auto f = [out, hdl, msg](caf::event_based_actor* self) -> caf::behavior {
      auto fail = [self, out](caf::error& err) {
        out->done = true;
        out->err = std::move(err);
        self->quit();
      };
      if constexpr (std::is_same_v<R, caf::unit_t>)
        self->request(hdl, caf::infinite, msg)
            .then(
                [self, out] {
                  out->done = true;
                  out->value = caf::unit;
                  self->quit();
                },
                fail);
      else
        self->request(hdl, caf::infinite, msg)
            .then(
                [self, out](R& x) {
                  out->done = true;
                  out->value = std::move(x);
                  self->quit();
                },
                fail);
      // Something to wait with until the reply came.
      return {[](const std::string&) {}};
    };
    spawn_fun_on(home(), f);
    return out;
  }

  /// Ends every actor as the simulator's network does: transports first
  /// (their protocols get `lost`), then the rest; then drops the test's
  /// handles, stops the shard and resets the actor system before the shard
  /// goes (its clock may still hold messages for actors pinned to the
  /// shard). Idempotent.
  void teardown() {
    if (!sys_) return;
    shard_->exit_actors(caf::exit_reason::user_shutdown, true);
    run();
    shard_->exit_actors(caf::exit_reason::user_shutdown, false);
    run();
    for (auto& f : drops_)
      f();
    drops_.clear();
    run();
    for (auto& slot : spares_.slots)
      slot = nullptr;
    shardwire::detail::spares = prev_spares_;
    shard_->stop();
    sys_->await_actors_before_shutdown(false);
    sys_.reset();
    shard_.reset();
    cfg_.reset();
  }

private:
  caf::scheduler::test_coordinator& coordinator() {
    return dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
  }

  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<shard> shard_;
  shardwire::detail::spare_store spares_;
  shardwire::detail::spare_store* prev_spares_ = nullptr;
  std::vector<std::function<void()>> drops_;
};

} // namespace shardwire::test
