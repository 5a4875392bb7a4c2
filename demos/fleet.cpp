// Supervising a fleet of OS processes, the OTP way.
//
// Starts --workers worker processes (this same program in --worker mode)
// under a one_for_one supervisor. Each worker is a systemd-style notify
// service: it says READY=1 and pings its watchdog (WATCHDOG=1, with a
// STATUS line) after every job, over the NOTIFY_SOCKET the fleet gives it.
// It runs under limits (1024 open files, nice 5, no core file), works for a
// while and then crashes at random: exit status 1, SIGABRT, or it hangs
// and stops pinging, so that the watchdog kills it (--watchdog-ms=0: no
// notify and no watchdog; workers are ready when they print "ready"). The
// supervisor restarts each with exponential backoff and jitter; every
// start, crash (with its cause) and restart is printed. Ctrl-C (or
// --duration-ms) stops the fleet:
// each worker gets SIGTERM to its process group, SIGKILL after
// --stop-timeout-ms, in reverse start order. The summary lists restarts per
// worker and checks that no worker process is left running.
//
//   fleet [--workers=8 (1-1000)] [--duration-ms=0] [--seed=0]
//         [--watchdog-ms=1000 (0, or 200-)] [--verbose]
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/supervision/messages.hpp"
#include "actors/supervisor.hpp"
#include "runtime/runtime.hpp"
#include "runtime/systemd_notify.hpp"
#include "transports/process_child.hpp"

#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

// Bounds of the options: enough for any demo run, small enough that no
// duration overflows std::chrono and no count exhausts the machine.
constexpr size_t max_workers = 1000;
constexpr size_t max_ms = 30ull * 24 * 3600 * 1000; // 30 days

struct fleet_config : config {
  size_t workers = 8;
  size_t duration_ms = 0;
  uint64_t seed = 0;
  size_t stop_timeout_ms = 2000;
  size_t watchdog_ms = 1000;
  bool verbose = false;
  // Worker mode (used by the fleet itself).
  bool worker = false;
  uint64_t worker_seed = 0;
  size_t mean_life_ms = 1500;

  fleet_config() {
    opt_group{custom_options_, "global"}
        .add(workers, "workers,w", "number of worker processes")
        .add(duration_ms, "duration-ms",
             "stop after this long (0: run until Ctrl-C)")
        .add(seed, "seed", "seed of the workers' crashes and the jitter")
        .add(stop_timeout_ms, "stop-timeout-ms",
             "SIGTERM to SIGKILL escalation when stopping a worker")
        .add(mean_life_ms, "mean-life-ms", "average worker life before a crash")
        .add(watchdog_ms, "watchdog-ms",
             "workers notify READY=1 and must ping WATCHDOG=1 this often "
             "(0: ready line, no watchdog)")
        .add(verbose, "verbose,v", "print every line the workers print")
        .add(worker, "worker", "(internal) run as a worker process")
        .add(worker_seed, "worker-seed", "(internal) seed of this worker");
    shards = 1;
  }

  /// Checks the fleet's own options (parse_args' validator).
  bool validate() const {
    auto ms_range = "must be 0-" + std::to_string(max_ms);
    bool ok = check_option(workers >= 1 && workers <= max_workers, "workers",
                           "must be 1-" + std::to_string(max_workers));
    ok &= check_option(duration_ms <= max_ms, "duration-ms", ms_range);
    ok &= check_option(stop_timeout_ms <= max_ms, "stop-timeout-ms", ms_range);
    ok &= check_option(mean_life_ms >= 1 && mean_life_ms <= max_ms,
                       "mean-life-ms", "must be 1-" + std::to_string(max_ms));
    // Workers ping after every 100 ms job: a shorter watchdog kills them all.
    ok &= check_option(
        watchdog_ms == 0 || (watchdog_ms >= 200 && watchdog_ms <= max_ms),
        "watchdog-ms", "must be 0 or 200-" + std::to_string(max_ms));
    return ok;
  }
};

// Calls runtime::request_stop() after `after` unless cancelled first. Its
// thread waits on a condition variable, not in a sleep, so cancelling (on
// Ctrl-C) ends it at once and the destructor's join never holds up the exit.
class stop_timer {
public:
  explicit stop_timer(std::chrono::milliseconds after)
      : thread_{[this, after] {
          std::unique_lock<std::mutex> lock{mtx_};
          if (!cv_.wait_for(lock, after, [this] { return cancelled_; }))
            runtime::request_stop();
        }} {}

  stop_timer(const stop_timer&) = delete;
  stop_timer& operator=(const stop_timer&) = delete;

  ~stop_timer() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      cancelled_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  std::thread thread_; // last: starts after the members it uses exist
};

// -- worker mode --------------------------------------------------------------

int run_worker(const fleet_config& cfg) {
  std::mt19937_64 rng{cfg.worker_seed ^ static_cast<uint64_t>(::getpid())};
  auto life_ms = 100 + rng() % (2 * cfg.mean_life_ms);
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  std::printf("ready (pid %d, nofile %llu, nice %d)\n", ::getpid(),
              static_cast<unsigned long long>(nofile.rlim_cur),
              ::getpriority(PRIO_PROCESS, 0));
  std::fflush(stdout);
  // As any Type=notify service: READY, then a watchdog ping per job.
  sd::notify("READY=1\nSTATUS=started");
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(life_ms);
  int job = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::printf("job %d done\n", ++job);
    std::fflush(stdout);
    sd::notify("WATCHDOG=1\nSTATUS=" + std::to_string(job) + " jobs done");
    std::this_thread::sleep_for(100ms);
  }
  auto mode = rng() % 4;
  if (mode == 1 && std::getenv("WATCHDOG_USEC") != nullptr) {
    std::printf("crashing by hanging (no more watchdog pings)\n");
    std::fflush(stdout);
    for (;;) // until the watchdog's SIGABRT
      std::this_thread::sleep_for(1s);
  }
  if (mode == 0) {
    std::printf("crashing with SIGABRT\n");
    std::fflush(stdout);
    std::signal(SIGABRT, SIG_DFL);
    std::abort();
  }
  std::printf("crashing with exit status 1\n");
  std::fflush(stdout);
  return 1;
}

// -- the supervisor's observer ------------------------------------------------

struct fleet_stats {
  std::mutex mtx;
  std::map<std::string, uint32_t> restarts;
  std::set<int32_t> pids;
};

// Asks the observer to answer once it handled everything queued before.
using flush_atom = caf::atom_constant<caf::atom("flush")>;

caf::behavior observer(caf::event_based_actor*, std::shared_ptr<fleet_stats> st,
                       bool verbose) {
  return {
      [](flush_atom) { return true; },
      [=](child_started& ev) {
        demo::println("[fleet] ", ev.id, " started",
                      ev.restarts
                          ? " (restart " + std::to_string(ev.restarts) + ")"
                          : "");
      },
      [=](child_exited& ev) {
        if (ev.requested)
          demo::println("[fleet] ", ev.id, " stopped");
        else
          demo::println("[fleet] ", ev.id, " crashed: ", describe(ev.reason));
      },
      [=](child_restarting& ev) {
        {
          std::lock_guard<std::mutex> guard{st->mtx};
          ++st->restarts[ev.id];
        }
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(ev.delay);
        demo::println("[fleet] ", ev.id, " restarting in ", ms.count(),
                      " ms (attempt ", ev.attempt, ")");
      },
      [=](child_start_failed& ev) {
        demo::println("[fleet] ", ev.id,
                      " failed to start: ", describe(ev.reason));
      },
      [=](escalated& ev) {
        demo::println("[fleet] supervisor gave up: ", describe(ev.reason));
      },
      [=](supervisor_started&) { demo::println("[fleet] all workers up"); },
      [=](process_status& st) {
        if (verbose) demo::println("  ", st.id, ": STATUS=", st.status);
      },
      [=](process_output& out) {
        auto line = out.bytes.str();
        if (line.rfind("ready (pid ", 0) == 0) {
          std::lock_guard<std::mutex> guard{st->mtx};
          st->pids.insert(std::stoi(line.substr(11)));
        }
        if (verbose || line.rfind("crashing", 0) == 0)
          demo::println("  ", out.id, ": ", line);
      },
  };
}

bool process_alive(int32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  auto p = line.rfind(')');
  return p != std::string::npos && p + 2 < line.size() && line[p + 2] != 'Z';
}

} // namespace

int main(int argc, char** argv) {
  fleet_config cfg;
  if (auto rc = parse_args(cfg, argc, argv, [&] { return cfg.validate(); }))
    return *rc;
  if (cfg.worker) return run_worker(cfg);
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  auto& sys = rt.system();
  auto stats = std::make_shared<fleet_stats>();
  auto obs = sys.spawn(observer, stats, cfg.verbose);
  auto self_exe = std::string{"/proc/self/exe"};
  char exe[4096];
  auto n = ::readlink(self_exe.c_str(), exe, sizeof(exe) - 1);
  if (n > 0) self_exe.assign(exe, static_cast<size_t>(n));
  supervisor_spec spec;
  spec.strategy = supervision_strategy::one_for_one;
  spec.observer = obs;
  spec.seed = cfg.seed;
  // A crashing fleet is the point of the demo: allow many restarts, but a
  // worker that keeps crashing backs off (100 ms doubling to 5 s).
  spec.intensity = restart_intensity{static_cast<uint32_t>(20 * cfg.workers),
                                     std::chrono::milliseconds{10'000}};
  spec.backoff.base = 100ms;
  spec.backoff.max = 5s;
  spec.backoff.reset_after = 3s;
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  for (size_t i = 1; i <= cfg.workers; ++i) {
    process_spec ps;
    ps.id = "worker-" + std::to_string(i);
    ps.argv = {self_exe, "--worker",
               "--worker-seed=" + std::to_string(cfg.seed * 1000 + i),
               "--mean-life-ms=" + std::to_string(cfg.mean_life_ms)};
    if (cfg.watchdog_ms > 0) {
      ps.notify = true;
      ps.watchdog = std::chrono::milliseconds{cfg.watchdog_ms};
    } else {
      ps.ready_line = "ready";
    }
    // Limits as a unit file would set them: LimitNOFILE=1024, Nice=5 and
    // LimitCORE=0 (a worker's SIGABRT leaves no core file behind); never
    // above what this program may grant without privilege.
    ps.options.limits.open_files = std::min<uint64_t>(1024, nofile.rlim_max);
    ps.options.limits.nice = std::max(5, ::getpriority(PRIO_PROCESS, 0));
    ps.options.limits.core_size = 0;
    ps.subscriber = obs;
    ps.stop_timeout = std::chrono::milliseconds{cfg.stop_timeout_ms};
    spec.children.push_back(process_child_spec(rt, ps));
  }
  auto sup = spawn_supervisor(sys, spec);
  if (!sup) {
    demo::eprintln("error: ", describe(sup.error()));
    return 1;
  }
  std::optional<stop_timer> timer;
  if (cfg.duration_ms > 0)
    timer.emplace(std::chrono::milliseconds{cfg.duration_ms});
  runtime::wait_for_stop_signal();
  timer.reset(); // Ctrl-C before the duration: the timer ends now
  demo::println("[fleet] stopping");
  caf::error reason;
  {
    caf::scoped_actor self{sys};
    self->monitor(*sup);
    self->send_exit(*sup, caf::exit_reason::user_shutdown);
    self->receive([&](caf::down_msg& msg) { reason = msg.reason; });
    // Every event the supervisor sent is in the observer's mailbox by now
    // (it sent them before it went down): print them before the summary.
    self->request(obs, std::chrono::seconds(10), flush_atom::value)
        .receive([](bool) {}, [](caf::error&) {});
  }
  anon_send_exit(obs, caf::exit_reason::user_shutdown);
  uint32_t total = 0;
  size_t left = 0;
  {
    std::lock_guard<std::mutex> guard{stats->mtx};
    demo::println("[fleet] summary:");
    for (size_t i = 1; i <= cfg.workers; ++i) {
      auto id = "worker-" + std::to_string(i);
      auto r = stats->restarts[id];
      total += r;
      demo::println("  ", id, ": ", r, " restarts");
    }
    for (auto pid : stats->pids)
      if (process_alive(pid)) ++left;
    demo::println("  total restarts: ", total,
                  ", worker processes started: ", stats->pids.size(),
                  ", left running: ", left);
  }
  return left == 0 ? 0 : 1;
}
