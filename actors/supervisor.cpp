#include "actors/supervisor.hpp"

#include "actors/errors.hpp"
#include "runtime/metrics.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/response_promise.hpp>
#include <caf/result.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

namespace shardwire {

std::string to_string(supervision_strategy x) {
  switch (x) {
  case supervision_strategy::one_for_one:
    return "one_for_one";
  case supervision_strategy::one_for_all:
    return "one_for_all";
  case supervision_strategy::rest_for_one:
    return "rest_for_one";
  case supervision_strategy::simple_one_for_one:
    return "simple_one_for_one";
  }
  return "unknown";
}

namespace {

// -- metrics (runtime/metrics.hpp) -------------------------------------------

shared_value& restarts_counter() {
  static auto& c =
      metrics_registry::global()
          .family("shardwire_supervisor_restarts_total",
                  "Children restarted by supervisors.", metric_type::counter)
          .counter();
  return c;
}

// The `cause` label of a child's exit reason.
const char* exit_cause(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::normal) return "normal";
  if (reason == caf::exit_reason::kill) return "killed";
  if (reason == caf::exit_reason::user_shutdown) return "shutdown";
  if (reason == caf::exit_reason::unhandled_exception) return "exception";
  return "error";
}

metrics_family& exits_family() {
  static auto& fam = metrics_registry::global().family(
      "shardwire_supervisor_child_exits_total",
      "Supervised children that went down, by cause (normal, killed, "
      "shutdown, exception, error).",
      metric_type::counter);
  return fam;
}

void count_exit(const caf::error& reason) {
  exits_family().counter({{"cause", exit_cause(reason)}}).add();
}

// Internal timers, sent by the supervisor to itself.
using init_atom = caf::atom_constant<caf::atom("sv_init")>;
using ready_due_atom = caf::atom_constant<caf::atom("sv_ready")>;
using kill_due_atom = caf::atom_constant<caf::atom("sv_kill")>;
using restart_due_atom = caf::atom_constant<caf::atom("sv_restart")>;

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

/// One child (static: one per spec, keyed by spec index; pool: one per
/// `start_child`, keyed by a counter). Keys grow in start order, so the
/// ordered map iterates in start order.
struct slot {
  uint64_t key = 0;
  size_t spec_index = 0;
  std::string id;
  caf::message arg;
  caf::actor handle;
  child_state state = child_state::stopped;
  uint32_t restarts = 0;
  /// Backoff exponent: consecutive restarts since the last stable run.
  uint32_t attempt = 0;
  /// Incarnation counter; timers carry it so stale ones are ignored.
  uint64_t generation = 0;
  /// When the current incarnation's `start` returned (for backoff reset).
  std::optional<time_point> run_since;
  /// Was started (ready) at least once.
  bool ever_started = false;
  /// A readiness timeout fired; the child is being stopped as a failed start.
  bool failing_start = false;
  /// child_extend_timeout: the ready or kill deadline of the current state
  /// is not before this (steady clock, as CAF's timers).
  std::optional<std::chrono::steady_clock::time_point> extended_until;
  caf::error fail_reason;
  /// Part of a restart group that has not restarted it yet.
  bool restart_pending = false;
  /// `terminate_child` asked for it: no restart when it goes down.
  bool terminating = false;
  /// Pool child to forget once its stop completes (terminate_child).
  bool forget_when_down = false;
  /// Requests waiting for this child's start (handle) or stop (child_info).
  std::vector<caf::response_promise> start_waiters;
  std::vector<caf::response_promise> stop_waiters;
};

/// One queued action. Steps are lazy: a start of a child that is alive and
/// a stop of one that is down are skipped when their turn comes.
struct step {
  enum kind_t : uint8_t { start, stop };
  kind_t kind;
  uint64_t key;
};

class supervisor_actor : public caf::event_based_actor {
public:
  supervisor_actor(caf::actor_config& cfg, supervisor_spec spec)
      : caf::event_based_actor(cfg), spec_(std::move(spec)),
        tally_(spec_.intensity),
        rng_(spec_.seed != 0 ? spec_.seed : std::random_device{}()) {
    // nop
  }

  const char* name() const override { return "shardwire.supervisor"; }

  caf::behavior make_behavior() override {
    set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
    // A non-normal exit message (a parent's shutdown, a linked actor's
    // failure) starts the ordered shutdown instead of killing us at once.
    set_exit_handler([this](caf::exit_msg& em) {
      // A child that linked itself to us is handled by its down message.
      if (!em.reason || by_actor_.count(em.source.id()) > 0) return;
      begin_shutdown(std::move(em.reason));
      advance();
    });
    send(this, init_atom::value);
    return {
        [this](init_atom) {
          if (!pool()) {
            for (size_t i = 0; i < spec_.children.size(); ++i) {
              auto key = next_key_++;
              auto& s = slots_[key];
              s.key = key;
              s.spec_index = i;
              s.id = spec_.children[i].id;
              plan_.push_back({step::start, key});
            }
          }
          advance();
        },
        [this](child_ready& msg) {
          if (auto* s = find_by_id(msg.id);
              s && s->state == child_state::starting && !s->failing_start &&
              spec_of(*s).readiness.kind == readiness_policy::wait_for_ready)
            mark_started(*s);
          advance();
        },
        [this](child_extend_timeout& msg) {
          auto* s = find_by_id(msg.id);
          if (!s || (s->state != child_state::starting &&
                     s->state != child_state::stopping))
            return;
          auto until = std::chrono::steady_clock::now() + msg.extra;
          if (!s->extended_until || *s->extended_until < until)
            s->extended_until = until;
        },
        [this](ready_due_atom msg, uint64_t key, uint64_t gen) {
          if (postponed(msg, key, gen)) return;
          on_ready_due(key, gen);
          advance();
        },
        [this](kill_due_atom msg, uint64_t key, uint64_t gen) {
          if (postponed(msg, key, gen)) return;
          auto* s = find(key);
          if (s && s->generation == gen && s->handle &&
              s->state == child_state::stopping)
            send_exit(s->handle, caf::exit_reason::kill);
        },
        [this](restart_due_atom, uint64_t token) {
          auto i = pending_restarts_.find(token);
          if (i == pending_restarts_.end()) return;
          auto keys = std::move(i->second);
          pending_restarts_.erase(i);
          // A child terminated meanwhile is no longer waiting.
          std::erase_if(keys, [this](uint64_t k) {
            auto* s = find(k);
            return !s || !s->restart_pending;
          });
          if (!shutting_down_) enqueue_starts(std::move(keys));
          advance();
        },
        [this](start_child& msg) -> caf::result<caf::actor> {
          if (!pool())
            return make_error(supervisor_errc::wrong_strategy,
                              "start_child needs simple_one_for_one");
          if (shutting_down_) return make_error(supervisor_errc::shutting_down);
          auto key = next_key_++;
          auto& s = slots_[key];
          s.key = key;
          s.spec_index = 0;
          s.id = spec_.children[0].id + "#" + std::to_string(++pool_counter_);
          s.arg = std::move(msg.arg);
          auto rp = make_response_promise();
          s.start_waiters.push_back(rp);
          plan_.push_back({step::start, key});
          advance();
          return rp;
        },
        [this](terminate_child& msg) -> caf::result<child_info> {
          auto* s =
              msg.handle ? find_by_handle(msg.handle) : find_by_id(msg.id);
          if (!s) return make_error(supervisor_errc::no_such_child, msg.id);
          if (pool()) s->forget_when_down = true;
          // A terminated child is restarted by no one.
          s->terminating = true;
          s->restart_pending = false;
          drop_queued_starts(s->key);
          if (!s->handle) {
            auto info = info_of(*s);
            s->state = child_state::stopped;
            info.state = child_state::stopped;
            if (s->forget_when_down) forget(s->key);
            return info;
          }
          auto rp = make_response_promise();
          s->stop_waiters.push_back(rp);
          plan_.push_back({step::stop, s->key});
          advance();
          return rp;
        },
        [this](restart_child& msg) -> caf::result<caf::actor> {
          if (pool())
            return make_error(supervisor_errc::wrong_strategy,
                              "restart_child is for static children");
          if (shutting_down_) return make_error(supervisor_errc::shutting_down);
          auto* s = find_by_id(msg.id);
          if (!s) return make_error(supervisor_errc::no_such_child, msg.id);
          if (s->handle && s->state == child_state::running) return s->handle;
          auto rp = make_response_promise();
          s->start_waiters.push_back(rp);
          // After a stop in progress or queued, the start comes next.
          if (!s->handle || s->state == child_state::stopping || s->terminating)
            enqueue_starts({s->key});
          advance();
          return rp;
        },
        [this](which_children) { return children_info(); },
        [this](count_children) {
          child_counts out;
          out.specs = static_cast<uint32_t>(slots_.size());
          for (auto& [key, s] : slots_)
            if (s.handle) ++out.active;
          return out;
        },
        [this](await_started) -> caf::result<std::vector<child_info>> {
          if (shutting_down_)
            return init_error_ ? init_error_
                               : make_error(supervisor_errc::shutting_down);
          if (!initializing_) return children_info();
          auto rp = make_response_promise();
          started_waiters_.push_back(rp);
          return rp;
        },
    };
  }

  void on_exit() override {
    // Reached without the ordered shutdown only when we were killed or
    // threw: no child may outlive its supervisor.
    for (auto& [key, s] : slots_)
      if (s.handle) caf::anon_send_exit(s.handle, caf::exit_reason::kill);
    for (auto& [key, s] : slots_) {
      for (auto& rp : s.start_waiters)
        rp.deliver(make_error(supervisor_errc::shutting_down));
      for (auto& rp : s.stop_waiters)
        rp.deliver(make_error(supervisor_errc::shutting_down));
    }
    for (auto& rp : started_waiters_)
      rp.deliver(make_error(supervisor_errc::shutting_down));
    // Start functions and handles may hold references to actors that hold
    // one to us; drop them so no reference cycle outlives the actor.
    slots_.clear();
    by_actor_.clear();
    started_waiters_.clear();
    spec_ = supervisor_spec{};
  }

private:
  // -- helpers --------------------------------------------------------------

  bool pool() const noexcept {
    return spec_.strategy == supervision_strategy::simple_one_for_one;
  }

  time_point now() const {
    return spec_.clock ? spec_.clock() : clock_type::now();
  }

  const child_spec& spec_of(const slot& s) const {
    return spec_.children[s.spec_index];
  }

  template <class Event>
  void emit(Event ev) {
    if (spec_.observer) send(spec_.observer, std::move(ev));
  }

  slot* find(uint64_t key) {
    auto i = slots_.find(key);
    return i == slots_.end() ? nullptr : &i->second;
  }

  slot* find_by_id(const std::string& id) {
    for (auto& [key, s] : slots_)
      if (s.id == id) return &s;
    return nullptr;
  }

  slot* find_by_handle(const caf::actor& h) {
    auto i = by_actor_.find(h.id());
    return i == by_actor_.end() ? nullptr : find(i->second);
  }

  child_info info_of(const slot& s) const {
    return child_info{s.id, s.handle, s.state, s.restarts};
  }

  std::vector<child_info> children_info() const {
    std::vector<child_info> out;
    out.reserve(slots_.size());
    for (auto& [key, s] : slots_)
      out.push_back(info_of(s));
    return out;
  }

  void forget(uint64_t key) {
    drop_queued_starts(key);
    slots_.erase(key);
  }

  void drop_queued_starts(uint64_t key) {
    plan_.erase(std::remove_if(plan_.begin(), plan_.end(),
                               [key](const step& st) {
                                 return st.kind == step::start && st.key == key;
                               }),
                plan_.end());
  }

  /// Queues starts for `keys` in start order, after everything queued.
  void enqueue_starts(std::vector<uint64_t> keys) {
    std::sort(keys.begin(), keys.end());
    for (auto key : keys) {
      drop_queued_starts(key);
      if (find(key)) plan_.push_back({step::start, key});
    }
  }

  // -- the plan -------------------------------------------------------------

  /// Runs queued steps until one has to wait (readiness, a stop) or none is
  /// left. Called at the end of every handler, never from the helpers.
  void advance() {
    while (!in_flight_ && !plan_.empty()) {
      auto st = plan_.front();
      plan_.pop_front();
      if (st.kind == step::start)
        begin_start(st.key);
      else
        begin_stop(st.key);
    }
    if (!in_flight_ && plan_.empty()) plan_drained();
  }

  void plan_drained() {
    if (shutting_down_) {
      // Children that are still alive (none expected) get stopped first.
      bool alive = false;
      for (auto i = slots_.rbegin(); i != slots_.rend(); ++i)
        if (i->second.handle) {
          alive = true;
          plan_.push_back({step::stop, i->first});
        }
      if (alive) return advance();
      quit(exit_reason_);
      return;
    }
    if (initializing_) {
      initializing_ = false;
      emit(supervisor_started{});
      auto info = children_info();
      for (auto& rp : started_waiters_)
        rp.deliver(info);
      started_waiters_.clear();
      if (spec_.ready_to) send(spec_.ready_to, child_ready{spec_.ready_id});
    }
  }

  void begin_start(uint64_t key) {
    auto* s = find(key);
    if (!s || s->handle || shutting_down_) return;
    const auto& cs = spec_of(*s);
    ++s->generation;
    s->terminating = false;
    s->failing_start = false;
    s->fail_reason = caf::error{};
    s->run_since.reset();
    child_context ctx{system(), caf::actor_cast<caf::actor>(this), s->id,
                      s->arg};
    auto res = [&]() -> caf::expected<caf::actor> {
      try {
        if (!cs.start)
          return make_error(supervisor_errc::invalid_spec, "no start function");
        return cs.start(ctx);
      } catch (const std::exception& e) {
        return make_error(supervisor_errc::start_failed,
                          std::string{"start threw: "} + e.what());
      } catch (...) {
        return make_error(supervisor_errc::start_failed, "start threw");
      }
    }();
    if (!res || !*res) {
      auto reason = !res ? std::move(res.error())
                         : make_error(supervisor_errc::start_failed,
                                      "start returned no actor");
      on_start_failed(key, std::move(reason));
      return;
    }
    s->handle = std::move(*res);
    by_actor_[s->handle.id()] = key;
    monitor(s->handle);
    s->run_since = now();
    if (cs.readiness.kind == readiness_policy::immediate) {
      mark_started(*s);
      return;
    }
    s->state = child_state::starting;
    s->extended_until.reset();
    in_flight_ = step{step::start, key};
    delayed_send(this, cs.readiness.time, ready_due_atom::value, key,
                 s->generation);
  }

  void mark_started(slot& s) {
    s.state = child_state::running;
    s.ever_started = true;
    s.restart_pending = false;
    emit(child_started{s.id, s.handle, s.restarts});
    for (auto& rp : s.start_waiters)
      rp.deliver(s.handle);
    s.start_waiters.clear();
    if (in_flight_ && in_flight_->kind == step::start &&
        in_flight_->key == s.key)
      in_flight_.reset();
  }

  // A deadline the child extended (child_extend_timeout) fires again at
  // the extended time instead.
  template <class Atom>
  bool postponed(Atom atom, uint64_t key, uint64_t gen) {
    auto* s = find(key);
    if (!s || s->generation != gen || !s->extended_until) return false;
    auto left = *s->extended_until - std::chrono::steady_clock::now();
    if (left <= left.zero()) return false;
    delayed_send(this, std::chrono::duration_cast<caf::timespan>(left), atom,
                 key, gen);
    return true;
  }

  void on_ready_due(uint64_t key, uint64_t gen) {
    auto* s = find(key);
    if (!s || s->generation != gen || s->state != child_state::starting ||
        s->failing_start || shutting_down_)
      return;
    if (spec_of(*s).readiness.kind == readiness_policy::min_run_time) {
      mark_started(*s);
      return;
    }
    // No child_ready in time: stop it like any child; its down completes
    // the failed start.
    s->failing_start = true;
    s->fail_reason = make_error(supervisor_errc::ready_timeout, s->id);
    s->state = child_state::stopping;
    send_stop(*s);
  }

  void begin_stop(uint64_t key) {
    auto* s = find(key);
    if (!s || !s->handle) return;
    s->state = child_state::stopping;
    in_flight_ = step{step::stop, key};
    send_stop(*s);
  }

  void send_stop(slot& s) {
    s.extended_until.reset(); // an extension of the start is not the stop's
    const auto& sd = spec_of(s).shutdown;
    switch (sd.kind) {
    case shutdown_policy::brutal_kill:
      send_exit(s.handle, caf::exit_reason::kill);
      break;
    case shutdown_policy::timeout:
      send_exit(s.handle, caf::exit_reason::user_shutdown);
      delayed_send(this, sd.grace, kill_due_atom::value, s.key, s.generation);
      break;
    case shutdown_policy::infinity:
      send_exit(s.handle, caf::exit_reason::user_shutdown);
      break;
    }
  }

  // -- exits ------------------------------------------------------------------

  void on_down(caf::down_msg& dm) {
    auto i = by_actor_.find(dm.source.id());
    if (i == by_actor_.end()) return;
    auto key = i->second;
    by_actor_.erase(i);
    auto* s = find(key);
    if (!s) return;
    s->handle = caf::actor{};
    if (in_flight_ && in_flight_->key == key) in_flight_.reset();
    if (s->failing_start || s->state == child_state::starting) {
      auto reason = s->failing_start ? s->fail_reason : dm.reason;
      s->failing_start = false;
      on_start_failed(key, std::move(reason));
    } else if (s->state == child_state::stopping) {
      count_exit(dm.reason);
      emit(child_exited{s->id, dm.reason, true});
      s->state =
          s->restart_pending ? child_state::restarting : child_state::stopped;
      finish_stop(*s);
    } else {
      count_exit(dm.reason);
      emit(child_exited{s->id, dm.reason, false});
      if (s->terminating) {
        // It went down on its own before its requested stop began.
        s->state = child_state::stopped;
        finish_stop(*s);
      } else {
        on_crash(key, dm.reason);
      }
    }
    advance();
  }

  /// Answers the `terminate_child` requests of a child that is down.
  void finish_stop(slot& s) {
    s.terminating = false;
    auto info = info_of(s);
    for (auto& rp : s.stop_waiters)
      rp.deliver(info);
    s.stop_waiters.clear();
    if (s.forget_when_down) forget(s.key);
  }

  void on_start_failed(uint64_t key, caf::error reason) {
    auto& s = *find(key);
    s.state = child_state::stopped;
    s.run_since.reset();
    emit(child_start_failed{s.id, reason});
    if (pool() && !s.ever_started) {
      // A pool child that never started: the requester gets the error.
      for (auto& rp : s.start_waiters)
        rp.deliver(reason);
      s.start_waiters.clear();
      forget(key);
      return;
    }
    if (initializing_ && !s.ever_started) {
      // OTP: a child that fails its initial start fails the supervisor.
      init_error_ = make_error(supervisor_errc::start_failed,
                               s.id + ": " + describe(reason));
      escalate(init_error_);
      return;
    }
    if (!s.start_waiters.empty()) {
      // An explicit restart_child: its caller learns why, nothing retries.
      for (auto& rp : s.start_waiters)
        rp.deliver(reason);
      s.start_waiters.clear();
      s.restart_pending = false;
      return;
    }
    // A failed restart counts like a crash: backoff, intensity, strategy.
    on_crash(key, std::move(reason));
  }

  void on_crash(uint64_t key, const caf::error& reason) {
    auto& s = *find(key);
    if (shutting_down_) {
      s.state = child_state::stopped;
      return;
    }
    const auto& cs = spec_of(s);
    if (!should_restart(cs.restart, reason)) {
      s.state = child_state::stopped;
      s.restart_pending = false;
      s.run_since.reset();
      // OTP forgets temporary children; a pool forgets every child that is
      // not restarted. A static one stays listed as stopped.
      if (pool()) forget(key);
      return;
    }
    if (!tally_.record(now())) {
      escalate(make_error(supervisor_errc::max_restarts_exceeded,
                          s.id + ": " + describe(reason)));
      return;
    }
    if (s.run_since && now() - *s.run_since >= spec_.backoff.reset_after)
      s.attempt = 0;
    s.run_since.reset();
    auto delay = backoff_delay(spec_.backoff, s.attempt, rng_);
    ++s.attempt;
    ++s.restarts;
    restarts_counter().add();
    emit(child_restarting{s.id, delay, s.attempt});
    // The restart group, in start order: the failed child plus, for
    // one_for_all / rest_for_one, its siblings that are alive or waiting
    // for a restart themselves (a terminated child stays stopped).
    std::vector<uint64_t> group;
    for (auto& [k, sib] : slots_) {
      bool member = k == key;
      if (!member && !sib.terminating && (sib.handle || sib.restart_pending)) {
        if (spec_.strategy == supervision_strategy::one_for_all)
          member = true;
        else if (spec_.strategy == supervision_strategy::rest_for_one)
          member = k > key;
      }
      if (member) group.push_back(k);
    }
    std::vector<uint64_t> starts;
    for (auto k : group) {
      auto& g = slots_[k];
      drop_queued_starts(k);
      // Temporary siblings are stopped with the group but never restarted.
      if (k != key && spec_of(g).restart == restart_type::temporary) continue;
      g.restart_pending = true;
      if (!g.handle) g.state = child_state::restarting;
      starts.push_back(k);
    }
    for (auto i = group.rbegin(); i != group.rend(); ++i)
      if (*i != key) plan_.push_back({step::stop, *i});
    if (delay.count() == 0) {
      enqueue_starts(std::move(starts));
    } else {
      auto token = next_token_++;
      pending_restarts_[token] = std::move(starts);
      delayed_send(this, delay, restart_due_atom::value, token);
    }
  }

  void escalate(caf::error reason) {
    emit(escalated{reason});
    begin_shutdown(std::move(reason));
  }

  /// Stops every child in reverse start order, then quits with `reason`.
  void begin_shutdown(caf::error reason) {
    if (shutting_down_) return;
    shutting_down_ = true;
    exit_reason_ = std::move(reason);
    plan_.clear();
    pending_restarts_.clear();
    if (in_flight_ && in_flight_->kind == step::start) {
      auto* s = find(in_flight_->key);
      // A child being stopped for a readiness timeout stays in flight until
      // it is down; one still waiting for readiness is stopped below.
      if (!s || !s->failing_start) {
        in_flight_.reset();
        if (s && s->handle) s->state = child_state::running;
      }
    }
    auto err =
        init_error_ ? init_error_ : make_error(supervisor_errc::shutting_down);
    for (auto& rp : started_waiters_)
      rp.deliver(err);
    started_waiters_.clear();
    for (auto i = slots_.rbegin(); i != slots_.rend(); ++i) {
      auto& s = i->second;
      for (auto& rp : s.start_waiters)
        rp.deliver(make_error(supervisor_errc::shutting_down));
      s.start_waiters.clear();
      s.restart_pending = false;
      if (s.handle && !(in_flight_ && in_flight_->key == i->first))
        plan_.push_back({step::stop, i->first});
    }
  }

  // -- state ----------------------------------------------------------------

  supervisor_spec spec_;
  restart_tally tally_;
  jitter_rng rng_;
  std::map<uint64_t, slot> slots_;
  std::unordered_map<caf::actor_id, uint64_t> by_actor_;
  std::deque<step> plan_;
  std::optional<step> in_flight_;
  std::map<uint64_t, std::vector<uint64_t>> pending_restarts_;
  uint64_t next_key_ = 0;
  uint64_t next_token_ = 0;
  uint64_t pool_counter_ = 0;
  bool initializing_ = true;
  bool shutting_down_ = false;
  caf::error exit_reason_;
  caf::error init_error_;
  std::vector<caf::response_promise> started_waiters_;
};

caf::error validate(const supervisor_spec& spec) {
  if (spec.strategy == supervision_strategy::simple_one_for_one &&
      spec.children.size() != 1)
    return make_error(supervisor_errc::invalid_spec,
                      "simple_one_for_one needs exactly one template child");
  std::set<std::string> ids;
  for (auto& c : spec.children) {
    if (!c.start)
      return make_error(supervisor_errc::invalid_spec,
                        "child '" + c.id + "' has no start function");
    if (!ids.insert(c.id).second)
      return make_error(supervisor_errc::invalid_spec,
                        "duplicate child id '" + c.id + "'");
  }
  auto j = spec.backoff.jitter;
  if (!(j >= 0.0 && j <= 1.0))
    return make_error(supervisor_errc::invalid_spec, "jitter not in [0, 1]");
  return caf::error{};
}

} // namespace

caf::expected<caf::actor> spawn_supervisor(caf::actor_system& sys,
                                           supervisor_spec spec) {
  if (auto err = validate(spec)) return err;
  // The families appear in the exposition (at zero) from the first
  // supervisor on, not only after the first restart.
  restarts_counter();
  exits_family();
  return sys.spawn<supervisor_actor>(std::move(spec));
}

child_spec supervisor_child(std::string id, supervisor_spec spec,
                            std::chrono::milliseconds ready_timeout) {
  child_spec out;
  out.id = id;
  out.restart = restart_type::permanent;
  out.shutdown = shutdown_policy::wait();
  out.readiness = readiness_policy::ready_message(ready_timeout);
  out.start = [spec = std::move(spec)](child_context& ctx) {
    auto nested = spec;
    nested.ready_to = ctx.supervisor;
    nested.ready_id = ctx.id;
    return spawn_supervisor(ctx.system, std::move(nested));
  };
  return out;
}

} // namespace shardwire
