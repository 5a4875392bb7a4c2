#include "transports/process_child.hpp"

#include "actors/errors.hpp"
#include "actors/supervision/messages.hpp"
#include "runtime/log.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/liveness_probe.hpp"
#include "transports/detail/notify_socket.hpp"
#include "transports/detail/process_output.hpp"

#include <algorithm>
#include <cstdlib>

namespace shardwire {

namespace {

// Timer and internal messages of the process child.
struct stop_deadline {};
struct ready_deadline {};
// Carries the ping generation it was armed for: a later ping re-arms with
// a new one, and the old deadline is then ignored.
struct watchdog_deadline {
  uint64_t generation;
};
struct probe_tick {};
// The outcome of liveness probe number `seq`.
struct probe_result {
  uint64_t seq;
  bool passed;
  std::string what;
};
struct spawn_failed {
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stop_deadline&) {
  return f(caf::meta::type_name("shardwire::stop_deadline"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ready_deadline&) {
  return f(caf::meta::type_name("shardwire::ready_deadline"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, watchdog_deadline& x) {
  return f(caf::meta::type_name("shardwire::watchdog_deadline"), x.generation);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_tick&) {
  return f(caf::meta::type_name("shardwire::probe_tick"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_result& x) {
  return f(caf::meta::type_name("shardwire::probe_result"), x.seq, x.passed,
           x.what);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, spawn_failed& x) {
  return f(caf::meta::type_name("shardwire::spawn_failed"), x.reason);
}

using process_child_actor = subprocess_protocol_actor::extend<
    caf::reacts_to<stop_deadline>, caf::reacts_to<ready_deadline>,
    caf::reacts_to<watchdog_deadline>, caf::reacts_to<probe_tick>,
    caf::reacts_to<probe_result>, caf::reacts_to<spawn_failed>>;

class process_child : public pinned<process_child_actor::base> {
public:
  process_child(caf::actor_config& cfg, runtime* rt, process_spec spec,
                std::function<void()> on_ready,
                std::function<void(caf::timespan)> on_extend)
      : pinned(cfg), rt_(rt), spec_(std::move(spec)),
        on_ready_(std::move(on_ready)), on_extend_(std::move(on_extend)) {
    spec_.options.new_process_group = true;
    spec_.options.kill_group_on_exit = true;
  }

  behavior_type make_behavior() override {
    set_exit_handler([this](caf::exit_msg& msg) { begin_stop(msg.reason); });
    auto opts = spec_.options;
    opts.shard = home().id();
    if (auto err = check_probe();
        err || (err = output_.open(spec_)) || (err = set_up_notify(opts))) {
      caf::anon_send(caf::actor_cast<caf::actor>(this),
                     spawn_failed{std::move(err)});
      return handlers();
    }
    auto self_hdl = caf::actor_cast<subprocess_protocol_actor>(this);
    auto self_addr = caf::actor_cast<caf::actor>(this);
    async_subprocess_exec(
        *rt_, spec_.argv, [self_hdl](shard&) { return self_hdl; }, opts,
        [self_addr](caf::expected<subprocess> sp) {
          if (!sp) caf::anon_send(self_addr, spawn_failed{sp.error()});
        });
    return handlers();
  }

  void on_exit() override {
    // Killed without a graceful stop (exit_reason::kill, runtime shutdown):
    // the transport sees its protocol go down and kills the group.
    transport_ = nullptr;
    notify_.close();
  }

private:
  behavior_type handlers() {
    return {
        [this](subprocess_connected& msg) {
          transport_ = msg.transport;
          pid_ = msg.info.pid;
          if (stopping_) {
            send_stop_signal();
            return;
          }
          if (spec_.notify) {
            // READY=1 makes it ready; what came before this message is
            // judged now that the child's pid is known.
            auto early = std::move(early_notify_);
            for (auto& [fields, sender] : early)
              on_notify(std::move(fields), sender);
            return;
          }
          if (!spec_.ready_line && !spec_.ready_after)
            ready();
          else if (spec_.ready_after)
            delayed_send(this, *spec_.ready_after, ready_deadline{});
        },
        [this](pipe_data& msg) { output_.on_data(msg, forward_fn()); },
        [this](pipe_lost& msg) { output_.on_end(msg.fd, forward_fn()); },
        [this](exited& msg) {
          status_ = msg.status;
          // Its own cause: the restart policy may treat it apart, and the
          // fix (memory.max) differs from a crash's.
          if (msg.oom_killed && !failure_ && !stopping_)
            failure_ = make_error(
                sw_errc::oom_killed,
                spec_.id + ": the OOM killer killed it (memory.max " +
                    (spec_.options.limits.cgroup &&
                             spec_.options.limits.cgroup->memory_max
                         ? std::to_string(
                               *spec_.options.limits.cgroup->memory_max)
                         : std::string{"?"}) +
                    " bytes)");
        },
        [](shardwire::pause) {},
        [](shardwire::resume) {},
        [this](lost&) { finish(); },
        [this](stop_deadline) {
          if (stop_extended_until_) { // EXTEND_TIMEOUT_USEC while stopping
            auto left =
                *stop_extended_until_ - std::chrono::steady_clock::now();
            if (left > left.zero()) {
              delayed_send(this,
                           std::chrono::duration_cast<caf::timespan>(left),
                           stop_deadline{});
              return;
            }
          }
          if (!status_ && transport_) {
            log::warning("process ", spec_.id, " (pid ", pid_,
                         ") ignored signal ", spec_.stop_signal,
                         "; sending SIGKILL");
            send(transport_, shardwire::signal{SIGKILL, true});
          }
        },
        [this](ready_deadline) {
          if (!status_ && !stopping_) ready();
        },
        [this](probe_tick) { start_probe(); },
        [this](probe_result& msg) { on_probe_result(msg); },
        [this](watchdog_deadline msg) {
          if (msg.generation == watchdog_generation_ && !status_ && !stopping_)
            kill_unhealthy(sw_errc::watchdog_timeout,
                           "no WATCHDOG=1 for " +
                               std::to_string(watchdog_interval_.count()) +
                               " ms");
        },
        [this](spawn_failed& msg) {
          log::warning("process ", spec_.id, ": ", describe(msg.reason));
          quit(std::move(msg.reason));
        },
    };
  }

  void ready() {
    if (ready_sent_) return;
    ready_sent_ = true;
    if (on_ready_) on_ready_();
    // Liveness probes run from readiness on.
    if (spec_.liveness)
      delayed_send(this, spec_.liveness->interval, probe_tick{});
  }

  caf::error check_probe() {
    if (!spec_.liveness) return {};
    if (auto problem = detail::probe_problem(*spec_.liveness))
      return make_error(sw_errc::invalid_argument, spec_.id + ": " + *problem);
    return {};
  }

  void start_probe() {
    if (status_ || stopping_ || failure_) return;
    auto seq = ++probe_seq_;
    auto self_addr = caf::actor_cast<caf::actor>(this);
    detail::run_probe(
        *rt_, home(), *spec_.liveness,
        [self_addr, seq](bool passed, std::string what) {
          caf::anon_send(self_addr, probe_result{seq, passed, std::move(what)});
        });
  }

  void on_probe_result(probe_result& r) {
    if (r.seq != probe_seq_ || status_ || stopping_ || failure_) return;
    if (r.passed) {
      probe_failures_ = 0;
    } else if (++probe_failures_ >= spec_.liveness->failure_threshold) {
      kill_unhealthy(sw_errc::liveness_failed,
                     "liveness probe failed " +
                         std::to_string(probe_failures_) + " times: " + r.what);
      return;
    } else {
      log::warning("process ", spec_.id, " (pid ", pid_,
                   "): liveness probe failed (", probe_failures_, " of ",
                   spec_.liveness->failure_threshold, "): ", r.what);
    }
    delayed_send(this, spec_.liveness->interval, probe_tick{});
  }

  // With `notify`: opens the socket and gives the child its address. In
  // every case keeps the program's own notification variables from the
  // child.
  caf::error set_up_notify(subprocess_options& opts) {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
      if (::getenv(name) != nullptr) opts.env_merge.emplace_back(name);
    if (!spec_.notify) return {};
    if (spec_.watchdog && spec_.watchdog->count() <= 0)
      return make_error(sw_errc::invalid_argument,
                        spec_.id + ": watchdog must be positive");
    auto err = notify_.open(home(), [this](auto fields, pid_t sender) {
      on_notify(std::move(fields), sender);
    });
    if (err) return err;
    opts.env_merge.push_back("NOTIFY_SOCKET=" + notify_.address());
    if (spec_.watchdog) {
      watchdog_interval_ = *spec_.watchdog;
      opts.env_merge.push_back(
          "WATCHDOG_USEC=" + std::to_string(watchdog_interval_.count() * 1000));
    }
    return {};
  }

  void on_notify(std::vector<detail::notify_field> fields, pid_t sender) {
    if (pid_ == 0) { // before subprocess_connected: kept until then
      if (early_notify_.size() < 64) // bounded: connected comes at once
        early_notify_.emplace_back(std::move(fields), sender);
      return;
    }
    if (spec_.notify_from == notify_access::main && sender != pid_) {
      if (!foreign_notify_logged_)
        log::warning("process ", spec_.id, " (pid ", pid_,
                     "): notification from pid ", sender,
                     " dropped (notify_from = main)");
      foreign_notify_logged_ = true;
      return;
    }
    for (auto& f : fields) {
      if (f.key == "READY" && f.value == "1") {
        if (status_ || stopping_) continue;
        ready();
        arm_watchdog(); // the watchdog runs from readiness on
      } else if (f.key == "STATUS") {
        if (spec_.subscriber)
          caf::anon_send(spec_.subscriber,
                         process_status{spec_.id, std::move(f.value)});
      } else if (f.key == "WATCHDOG" && f.value == "1") {
        if (ready_sent_) arm_watchdog();
      } else if (f.key == "WATCHDOG" && f.value == "trigger") {
        if (!status_ && !stopping_)
          kill_unhealthy(sw_errc::watchdog_timeout, "WATCHDOG=trigger");
      } else if (f.key == "WATCHDOG_USEC") {
        char* end = nullptr;
        auto usec = std::strtoull(f.value.c_str(), &end, 10);
        if (end != f.value.c_str() && *end == '\0' && usec >= 1000) {
          watchdog_interval_ = std::chrono::milliseconds{usec / 1000};
          if (ready_sent_) arm_watchdog();
        }
      } else if (f.key == "EXTEND_TIMEOUT_USEC") {
        on_extend_timeout(f.value);
      } else if (f.key == "STOPPING" && f.value == "1") {
        log::info("process ", spec_.id, " (pid ", pid_, ") is stopping");
      } else if (f.key == "MAINPID") {
        log::info("process ", spec_.id, " (pid ", pid_, ") names main pid ",
                  f.value);
      }
    }
  }

  // systemd's EXTEND_TIMEOUT_USEC=: the deadline of the current state (the
  // supervisor's for readiness, the stop's SIGKILL) moves to at least that
  // far from now. A running child has no deadline to move (no
  // RuntimeMaxSec=): ignored then.
  void on_extend_timeout(const std::string& value) {
    char* end = nullptr;
    auto usec = std::strtoull(value.c_str(), &end, 10);
    if (end == value.c_str() || *end != '\0') return;
    auto extra = std::chrono::duration_cast<caf::timespan>(
        std::chrono::microseconds{usec});
    bool stopping = stopping_ || failure_;
    if (ready_sent_ && !stopping) return;
    if (stopping) {
      auto until = std::chrono::steady_clock::now() + extra;
      if (!stop_extended_until_ || *stop_extended_until_ < until)
        stop_extended_until_ = until;
    }
    if (on_extend_) on_extend_(extra);
  }

  void arm_watchdog() {
    if (watchdog_interval_.count() <= 0) return;
    delayed_send(this, watchdog_interval_,
                 watchdog_deadline{++watchdog_generation_});
  }

  // The child missed its watchdog or failed its liveness probe: killed as
  // systemd does (the watchdog signal, SIGKILL after stop_timeout), and the
  // actor ends with `code` once it is reaped.
  void kill_unhealthy(sw_errc code, std::string why) {
    if (failure_ || !transport_) return;
    log::warning("process ", spec_.id, " (pid ", pid_, "): ", why,
                 "; sending signal ", spec_.watchdog_signal);
    failure_ = make_error(code, spec_.id + ": " + why);
    send(transport_, shardwire::signal{spec_.watchdog_signal, true});
    delayed_send(this, spec_.stop_timeout, stop_deadline{});
  }

  void begin_stop(caf::error reason) {
    if (stopping_) return;
    stopping_ = true;
    stop_reason_ = reason ? std::move(reason)
                          : caf::error{caf::exit_reason::user_shutdown};
    if (stop_reason_ == caf::exit_reason::kill) {
      quit(stop_reason_);
      return;
    }
    if (transport_) send_stop_signal();
    // Not spawned yet: the signal follows in the connected handler.
  }

  void send_stop_signal() {
    if (!status_) {
      send(transport_, shardwire::signal{spec_.stop_signal, true});
      delayed_send(this, spec_.stop_timeout, stop_deadline{});
    }
  }

  detail::process_output::forward_fn forward_fn() {
    return [this](int32_t fd, buffer bytes, read_ticket ticket) {
      forward(fd, std::move(bytes), std::move(ticket));
    };
  }

  void forward(int32_t fd, buffer bytes, read_ticket ticket) {
    if (spec_.ready_line && !spec_.notify && !ready_sent_ &&
        bytes.view().find(*spec_.ready_line) != std::string_view::npos)
      ready();
    // The subscriber is dynamically typed: anon_send (a typed actor may not
    // `send` to it).
    if (spec_.subscriber)
      caf::anon_send(
          spec_.subscriber,
          process_output{spec_.id, fd, std::move(bytes), std::move(ticket)});
  }

  void finish() {
    transport_ = nullptr;
    notify_.close();
    if (stopping_) {
      quit(stop_reason_);
    } else if (failure_) {
      quit(failure_);
    } else if (status_ && std::find(spec_.success_statuses.begin(),
                                    spec_.success_statuses.end(),
                                    *status_) != spec_.success_statuses.end()) {
      quit();
    } else {
      auto st = status_ ? *status_ : 255;
      quit(make_error(sw_errc::process_failed,
                      spec_.id + ": " +
                          (st < 0 ? "signal " + std::to_string(-st)
                                  : "exit status " + std::to_string(st))));
    }
  }

  runtime* rt_;
  process_spec spec_;
  std::function<void()> on_ready_;
  std::function<void(caf::timespan)> on_extend_;
  std::optional<std::chrono::steady_clock::time_point> stop_extended_until_;
  subprocess_transport_actor transport_;
  int32_t pid_ = 0;
  std::optional<int32_t> status_;
  bool ready_sent_ = false;
  bool stopping_ = false;
  caf::error stop_reason_;
  detail::notify_socket notify_;
  bool foreign_notify_logged_ = false;
  std::vector<std::pair<std::vector<detail::notify_field>, pid_t>>
      early_notify_;
  detail::process_output output_; // log files, lines
  std::chrono::milliseconds watchdog_interval_{0};
  uint64_t watchdog_generation_ = 0;
  caf::error failure_; // watchdog or liveness: the reason to end with
  uint64_t probe_seq_ = 0;
  uint32_t probe_failures_ = 0;
};

} // namespace

caf::actor spawn_process_child(runtime& rt, process_spec spec,
                               std::function<void()> on_ready,
                               std::function<void(caf::timespan)> on_extend) {
  auto& s = spec.options.shard
                ? rt.shard_at(*spec.options.shard % rt.shard_count())
                : rt.pick_shard();
  return caf::actor_cast<caf::actor>(spawn_on<process_child>(
      s, &rt, std::move(spec), std::move(on_ready), std::move(on_extend)));
}

child_spec process_child_spec(runtime& rt, process_spec spec,
                              restart_type restart) {
  child_spec cs;
  cs.id = spec.id;
  cs.restart = restart;
  cs.shutdown =
      shutdown_policy::after(spec.stop_timeout + std::chrono::seconds(1));
  if (spec.ready_line || spec.notify)
    cs.readiness = readiness_policy::ready_message(spec.ready_timeout);
  else if (spec.ready_after)
    cs.readiness =
        readiness_policy::ready_message(*spec.ready_after + spec.ready_timeout);
  auto* rtp = &rt;
  cs.start = [rtp, spec](child_context& ctx) -> caf::expected<caf::actor> {
    auto copy = spec;
    copy.id = ctx.id; // pool children get "<id>#<n>"
    bool report = copy.ready_line || copy.ready_after || copy.notify;
    auto sup = ctx.supervisor;
    auto id = ctx.id;
    return spawn_process_child(
        *rtp, std::move(copy),
        [report, sup, id] {
          if (report) caf::anon_send(sup, child_ready{id});
        },
        [sup, id](caf::timespan extra) {
          caf::anon_send(sup, child_extend_timeout{id, extra});
        });
  };
  return cs;
}

} // namespace shardwire
