// Remote messaging: request/response between two shardwire nodes in two
// processes (CAF's middleman), side by side with Erlang's distribution in
// the same shape (docs/distributed.md, "Remote messaging speed").
//
// The server process (this program with --role=server) publishes an echo
// actor; this process looks it up and runs --callers caller actors, each
// with one request of --payload bytes in flight, for --seconds after a
// quarter second of warm-up. Server and callers are pinned to one core each
// where there are two. With --baseline=erlang (the default) an Erlang node
// pair does the same (a registered echo process, callers doing `!` and
// `receive`) when `erl` is installed (Debian's erlang-base; skipped with a
// message otherwise), and the ratios are printed.
//
// Without --callers / --payload it measures 1 and 50 callers with 64 B and
// 4 KiB. The last line is always shardwire's last row:
//   round_trips_per_s=N p99_us=N
//
// --carrier picks what carries the node messages: `caf` (the default, CAF's
// middleman: actors/node.hpp) or `stream` (stream nodes over shardwire's
// TCP on one shard per process: actors/stream_node.hpp); the callers and
// the echo actor are the same actors either way.
//
//   remote_bench [--callers=N] [--payload=BYTES] [--seconds=S]
//                [--baseline=erlang|none] [--carrier=caf|stream]
#include "bench/option_checks.hpp"
#include "bench/stop_signal.hpp"

#include "actors/errors.hpp"
#include "actors/node.hpp"
#include "actors/stream_node.hpp"
#include "runtime/runtime.hpp"
#include "transports/stream_node_tcp.hpp"
#include "transports/tcp.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <iostream>
#include <optional>
#include <sched.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using go_atom = caf::atom_constant<caf::atom("rb_go")>;

struct bench_config : shardwire::node_config {
  size_t callers = 0; // 0: 1 and 50
  size_t payload = 0; // 0: 64 and 4096
  double seconds = 3;
  std::string baseline = "erlang";
  std::string role = "client";
  std::string carrier = "caf";

  bench_config() {
    opt_group{custom_options_, "global"}
        .add(callers, "callers", "concurrent callers (default: 1 and 50)")
        .add(payload, "payload", "bytes per request (default: 64 and 4096)")
        .add(seconds, "seconds", "measuring time per row")
        .add(baseline, "baseline",
             "erlang (an Erlang node pair, when erl is installed) or none")
        .add(role, "role", "client, or server (the process it starts)")
        .add(carrier, "carrier",
             "caf (CAF's middleman) or stream (stream nodes over shardwire "
             "TCP)");
  }
};

struct row {
  std::string system;
  size_t callers = 0;
  size_t payload = 0;
  double rps = 0;
  double p50_us = 0;
  double p99_us = 0;
};

void pin_to_cpu(int cpu) {
  if (std::thread::hardware_concurrency() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

/// A child process running `argv` on `cpu`, its stdout on a pipe.
struct child {
  pid_t pid = -1;
  int out = -1;

  bool start(const std::vector<std::string>& argv, int cpu) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return false;
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t parent = ::getpid();
    bench::stop_signal_block block;
    pid = ::fork();
    if (pid == 0) {
      bench::in_forked_child(parent);
      ::dup2(p[1], 1);
      pin_to_cpu(cpu);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(p[1]);
    if (pid < 0) {
      ::close(p[0]);
      return false;
    }
    bench::track_child(pid);
    out = p[0];
    return true;
  }

  /// The next line of its stdout (false at EOF).
  bool read_line(std::string& line) {
    line.clear();
    char c;
    for (;;) {
      auto n = ::read(out, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return !line.empty();
      if (c == '\n') return true;
      line += c;
    }
  }

  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bench::untrack_child(pid);
    pid = -1;
    if (out >= 0) ::close(out);
    out = -1;
  }
};

// -- the server process
// --------------------------------------------------------

caf::actor spawn_echo(caf::actor_system& sys) {
  return sys.spawn([]() -> caf::behavior {
    return {[](std::string& s) { return std::move(s); }};
  });
}

// Until the client stops it.
void wait_for_stop() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  int sig;
  sigwait(&stop, &sig);
}

int run_caf_server(bench_config& cfg) {
  caf::actor_system sys{cfg};
  shardwire::node n{sys};
  auto echo = spawn_echo(sys);
  n.add("echo", echo);
  auto port = n.publish(0);
  if (!port) {
    std::cerr << "error: cannot publish: " << shardwire::describe(port.error())
              << '\n';
    return 1;
  }
  std::cout << "port=" << *port << std::endl;
  wait_for_stop();
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  n.close();
  return 0;
}

// One shard: the process is pinned to one core, as the CAF server is.
int run_stream_server(bench_config& cfg) {
  cfg.shards = 1;
  shardwire::runtime rt{cfg};
  auto echo = spawn_echo(rt.system());
  shardwire::stream_node_directory dir{rt.system()};
  dir.add("echo", echo);
  shardwire::server_options opts;
  opts.hosts = {"127.0.0.1"};
  opts.port = 0;
  auto srv =
      shardwire::create_server(rt, shardwire::serve_stream_node(dir), opts);
  if (!srv) {
    std::cerr << "error: cannot serve: " << shardwire::describe(srv.error())
              << '\n';
    return 1;
  }
  std::cout << "port=" << srv->sockets.front().port << std::endl;
  wait_for_stop();
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  return 0;
}

int run_server(bench_config& cfg) {
  return cfg.carrier == "stream" ? run_stream_server(cfg) : run_caf_server(cfg);
}

// -- shardwire callers
// -----------------------------------------------------------

struct caller_result {
  uint64_t count = 0;
  std::vector<uint32_t> latency_us;
  bool failed = false;
};

// One request in flight; the next one leaves from the reply's handler.
class caller : public caf::event_based_actor {
public:
  caller(caf::actor_config& cfg, caf::actor svc, std::string payload,
         clock_type::time_point measure_from, clock_type::time_point until,
         std::shared_ptr<std::promise<caller_result>> done)
      : caf::event_based_actor(cfg), svc_(std::move(svc)),
        payload_(std::move(payload)), from_(measure_from), until_(until),
        done_(std::move(done)) {
    result_.latency_us.reserve(1 << 16);
  }

  caf::behavior make_behavior() override {
    return {[this](go_atom) { fire(); }};
  }

private:
  void fire() {
    auto t0 = clock_type::now();
    request(svc_, caf::infinite, payload_)
        .then(
            [this, t0](std::string&) {
              auto t1 = clock_type::now();
              if (t0 >= from_) {
                ++result_.count;
                result_.latency_us.push_back(static_cast<uint32_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(t1 -
                                                                          t0)
                        .count()));
              }
              if (t1 < until_)
                fire();
              else
                finish();
            },
            [this](caf::error& err) {
              if (!result_.failed)
                std::cerr << "error: request: " << shardwire::describe(err)
                          << '\n';
              result_.failed = true;
              finish();
            });
  }

  void finish() {
    done_->set_value(std::move(result_));
    quit();
  }

  caf::actor svc_;
  std::string payload_;
  clock_type::time_point from_;
  clock_type::time_point until_;
  std::shared_ptr<std::promise<caller_result>> done_;
  caller_result result_;
};

double percentile(std::vector<uint32_t>& xs, double q) {
  if (xs.empty()) return 0;
  auto k = static_cast<size_t>(q * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<long>(k), xs.end());
  return xs[k];
}

std::optional<row> measure_shardwire(caf::actor_system& sys, caf::actor svc,
                                     size_t callers, size_t payload,
                                     double seconds) {
  auto warm = std::chrono::milliseconds(250);
  auto from = clock_type::now() + warm;
  auto until = from + std::chrono::duration_cast<clock_type::duration>(
                          std::chrono::duration<double>(seconds));
  std::vector<std::future<caller_result>> results;
  for (size_t i = 0; i < callers; ++i) {
    auto p = std::make_shared<std::promise<caller_result>>();
    results.push_back(p->get_future());
    auto c = sys.spawn<caller>(svc, std::string(payload, 'x'), from, until, p);
    caf::anon_send(c, go_atom::value);
  }
  uint64_t total = 0;
  std::vector<uint32_t> all;
  for (auto& f : results) {
    auto r = f.get();
    if (r.failed) return std::nullopt;
    total += r.count;
    all.insert(all.end(), r.latency_us.begin(), r.latency_us.end());
  }
  row out{"shardwire", callers, payload};
  out.rps = static_cast<double>(total) / seconds;
  out.p50_us = percentile(all, 0.50);
  out.p99_us = percentile(all, 0.99);
  return out;
}

// -- the Erlang baseline
// -------------------------------------------------------

// The same search execvp makes, so "installed" means "the child can start".
bool have_erl() {
  const char* path = std::getenv("PATH");
  std::string_view rest =
      path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = rest.find(':');
    std::string dir{rest.substr(0, colon)};
    if (dir.empty()) dir = ".";
    if (::access((dir + "/erl").c_str(), X_OK) == 0) return true;
    if (colon == std::string_view::npos) return false;
    rest.remove_prefix(colon + 1);
  }
}

std::optional<row> measure_erlang(size_t callers, size_t payload,
                                  double seconds) {
  auto tag = std::to_string(::getpid());
  std::string srv = "swbench_srv" + tag + "@127.0.0.1";
  std::string cli = "swbench_cli" + tag + "@127.0.0.1";
  child server;
  if (!server.start({"erl", "-name", srv, "-setcookie", "swbench", "-noshell",
                     "-eval",
                     "register(echo, spawn(fun L() -> receive {F, R, B} -> "
                     "F ! {R, B}, L() end end)), io:format(\"ready~n\")."},
                    0))
    return std::nullopt;
  std::string line;
  if (!server.read_line(line) || line != "ready") {
    server.stop();
    return std::nullopt;
  }
  auto ms = static_cast<long>(seconds * 1000);
  std::string code =
      "Srv = {echo, '" + srv + "'}, true = net_kernel:connect_node('" + srv +
      "'), P = binary:copy(<<\"x\">>, " + std::to_string(payload) +
      "), Me = self(), Now = fun() -> erlang:monotonic_time(microsecond) end, "
      "From = Now() + 250000, Until = From + " +
      std::to_string(ms) +
      " * 1000, Call = fun Loop(N, Ls) -> T0 = Now(), R = make_ref(), "
      "Srv ! {self(), R, P}, receive {R, _} -> ok end, T1 = Now(), "
      "{N2, Ls2} = case T0 >= From of true -> {N + 1, [T1 - T0 | Ls]}; "
      "false -> {N, Ls} end, case T1 < Until of true -> Loop(N2, Ls2); "
      "false -> Me ! {done, N2, Ls2} end end, "
      "[spawn(fun() -> Call(0, []) end) || _ <- lists:seq(1, " +
      std::to_string(callers) +
      ")], Res = [receive {done, N, L} -> {N, L} end || _ <- lists:seq(1, " +
      std::to_string(callers) +
      ")], Total = lists:sum([N || {N, _} <- Res]), "
      "All = lists:sort(lists:append([L || {_, L} <- Res])), Len = "
      "length(All), Nth = fun(Q) -> lists:nth(max(1, trunc(Q * (Len - 1)) + "
      "1), All) end, io:format(\"rps=~p p50=~p p99=~p~n\", [Total * 1000 div " +
      std::to_string(ms) + ", Nth(0.5), Nth(0.99)]), init:stop().";
  child client;
  std::optional<row> out;
  if (client.start({"erl", "-name", cli, "-setcookie", "swbench", "-noshell",
                    "-eval", code},
                   1)) {
    while (client.read_line(line)) {
      double rps = 0, p50 = 0, p99 = 0;
      if (std::sscanf(line.c_str(), "rps=%lf p50=%lf p99=%lf", &rps, &p50,
                      &p99) == 3) {
        out = row{"erlang", callers, payload, rps, p50, p99};
        break;
      }
    }
    client.stop();
  }
  server.stop();
  return out;
}

void print_row(const row& r) {
  std::printf("%-10s %8zu %8zu %14.0f %9.0f %9.0f\n", r.system.c_str(),
              r.callers, r.payload, r.rps, r.p50_us, r.p99_us);
  std::fflush(stdout);
}

/// Looks `addr` up over a stream node link watched for `self` (which must
/// outlive the measurement: the watch, and with it the link, ends when its
/// owner does): the proxy, and the watch (to stop when done).
caf::expected<std::pair<caf::actor, caf::actor>>
stream_lookup(shardwire::runtime& rt, caf::scoped_actor& self,
              const shardwire::service_address& addr) {
  auto watch = shardwire::spawn_stream_service_watch(
      rt.system(), shardwire::tcp_stream_connector(rt), caf::actor{self}, addr);
  caf::expected<std::pair<caf::actor, caf::actor>> out{
      shardwire::make_error(shardwire::sw_errc::timeout, "no answer in 5 s")};
  self->receive(
      [&](shardwire::service_up& up) {
        out = std::make_pair(std::move(up.actor), watch);
      },
      [&](shardwire::service_down& down) { out = std::move(down.reason); },
      caf::after(std::chrono::seconds(5)) >> [] {});
  if (!out) caf::anon_send_exit(watch, caf::exit_reason::user_shutdown);
  return out;
}

/// The table's rows (and Erlang's beside them): `last` gets shardwire's
/// last row. Returns the exit status.
int run_rows(caf::actor_system& sys, const caf::actor& svc,
             const bench_config& cfg, std::optional<row>& last) {
  bool erlang = cfg.baseline == "erlang";
  if (erlang && !have_erl()) {
    std::cout << "baseline: erl not installed (Debian package erlang-base); "
                 "measuring shardwire alone\n";
    erlang = false;
  }
  std::vector<size_t> caller_counts = cfg.callers
                                          ? std::vector<size_t>{cfg.callers}
                                          : std::vector<size_t>{1, 50};
  std::vector<size_t> payloads = cfg.payload ? std::vector<size_t>{cfg.payload}
                                             : std::vector<size_t>{64, 4096};
  std::printf("%-10s %8s %8s %14s %9s %9s\n", "system", "callers", "payload",
              "round_trips/s", "p50_us", "p99_us");
  for (auto payload : payloads)
    for (auto callers : caller_counts) {
      auto sw = measure_shardwire(sys, svc, callers, payload, cfg.seconds);
      if (!sw) {
        std::cerr << "error: a request failed\n";
        return 1;
      }
      if (cfg.carrier == "stream") sw->system = "sw-stream";
      print_row(*sw);
      last = sw;
      if (!erlang) continue;
      auto er = measure_erlang(callers, payload, cfg.seconds);
      if (!er) {
        std::cout << "erlang: the baseline did not run\n";
        continue;
      }
      print_row(*er);
      std::printf("ratio shardwire/erlang: round trips %.2f, p99 %.2f\n",
                  sw->rps / er->rps,
                  er->p99_us > 0 ? sw->p99_us / er->p99_us : 0.0);
    }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  bench::stop_on_signal();
  bench_config cfg;
  if (auto rc = shardwire::parse_args(cfg, argc, argv, [&] {
        bool ok = cfg.callers == 0 ||
                  bench::check_range(cfg.callers, 1, 10000, "callers");
        ok &= cfg.payload == 0 ||
              bench::check_range(cfg.payload, 1, 16 << 20, "payload", " bytes");
        ok &= bench::check_seconds(cfg.seconds, 3600, "seconds");
        // Two nodes in two processes, no shardwire runtime: nothing to serve.
        ok &= shardwire::refuse_metrics_option(cfg);
        ok &= shardwire::check_option(cfg.baseline == "erlang" ||
                                          cfg.baseline == "none",
                                      "baseline", "must be erlang or none");
        ok &= shardwire::check_option(cfg.role == "client" ||
                                          cfg.role == "server",
                                      "role", "must be client or server");
        ok &= shardwire::check_option(cfg.carrier == "caf" ||
                                          cfg.carrier == "stream",
                                      "carrier", "must be caf or stream");
        return ok;
      }))
    return *rc;
  if (cfg.role == "server") return run_server(cfg);

  child server;
  char self_path[4096];
  auto len = ::readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (len <= 0) {
    std::cerr << "error: cannot find this program's path\n";
    return 1;
  }
  self_path[len] = '\0';
  // The server gets the same options (CAF's scheduler and middleman
  // settings included), as a server.
  std::vector<std::string> server_argv{self_path};
  for (int i = 1; i < argc; ++i)
    if (std::string_view{argv[i]}.rfind("--role", 0) != 0)
      server_argv.emplace_back(argv[i]);
  server_argv.emplace_back("--role=server");
  if (!server.start(server_argv, 0)) {
    std::cerr << "error: cannot start the server process\n";
    return 1;
  }
  std::string line;
  unsigned port = 0;
  if (!server.read_line(line) ||
      std::sscanf(line.c_str(), "port=%u", &port) != 1) {
    std::cerr << "error: the server process did not start (" << line << ")\n";
    server.stop();
    return 1;
  }
  pin_to_cpu(1);
  int rc = 0;
  std::optional<row> last;
  shardwire::service_address addr{"127.0.0.1", static_cast<uint16_t>(port),
                                  "echo"};
  if (cfg.carrier == "stream") {
    cfg.shards = 1;
    shardwire::runtime rt{cfg};
    caf::scoped_actor owner{rt.system()};
    auto svc = stream_lookup(rt, owner, addr);
    if (!svc) {
      std::cerr << "error: lookup: " << shardwire::describe(svc.error())
                << '\n';
      server.stop();
      return 1;
    }
    rc = run_rows(rt.system(), svc->first, cfg, last);
    caf::anon_send_exit(svc->second, caf::exit_reason::user_shutdown);
  } else {
    caf::actor_system sys{cfg};
    auto svc = shardwire::lookup_actor(sys, addr, {}, std::chrono::seconds(5));
    if (!svc) {
      std::cerr << "error: lookup: " << shardwire::describe(svc.error())
                << '\n';
      server.stop();
      return 1;
    }
    rc = run_rows(sys, *svc, cfg, last);
  }
  server.stop();
  if (last)
    std::printf("round_trips_per_s=%.0f p99_us=%.0f\n", last->rps,
                last->p99_us);
  return rc;
}
