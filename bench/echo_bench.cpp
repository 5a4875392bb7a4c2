// shardwire's benchmark program: shardwire against plain baselines measured
// in the same run. Four parts (--suite, default tcp,udp,spawn):
//  tcp:   echo servers, each in its own process on its own core(s), the load
//         generator on others (in --load-procs worker processes);
//  tls:   the same echo over TLS 1.3, shardwire (server_options::tls) vs
//         asio::ssl::stream, with OpenSSL clients (bench/tls_load.*):
//         CPU per request at --tls-sizes, full handshakes/s and server CPU
//         per handshake, memory per idle TLS connection;
//  udp:   UDP echo round trips/s, shardwire vs plain Asio (bench/udp_echo.*);
//  spawn: processes/s for `true`, shardwire vs a posix_spawn+waitpid loop,
//         plus a churn check for leaks (bench/spawn_measure.*).
//
//   echo_bench                         # all parts, TCP: 50 conns, 1 KiB,
//                                      # 10 rounds of 0.3 s per server
//   echo_bench --suite=tcp --sizes=64,1024,16384 --shard-counts=1,2
//   echo_bench --suite=tcp --shards-sweep=8 --load-procs=0   # 1..8 shards
//   echo_bench --callgrind             # user-space instructions per echo
//   echo_bench --metrics-overhead      # shardwire, metrics on vs off
//   echo_bench --suite=tls             # TLS: 1 KiB and 16 KiB, handshakes,
//                                      # 2,000 idle TLS connections
//
// Figures per server: req/s, MiB/s, p50/p99 latency, server CPU per request
// (user+sys from /proc), memory per idle connection (server RSS growth over
// --idle connections), and in --callgrind mode instructions per echo
// ((Ir(2N) - Ir(N)) / N, all threads). Ratios are against the Asio baseline
// of the same run. --shards-sweep adds a table of throughput and CPU per
// request by shard count, against N x the 1-shard throughput.
//
// Timing method: the servers of one message size run side by side (idle
// but for the one measured) with their connections open, and are measured
// in short alternating windows (--rounds x --duration), because this kind
// of machine drifts by 20 % and more over a few seconds: windows a few
// hundred milliseconds apart see the same drift. Each server is measured
// between two Asio windows (A x A y A ...), and its ratios in a round (CPU
// per request, p99, throughput) are against their mean; the table's ratios
// are the medians over rounds.
//
// Ctrl-C (or SIGTERM) ends it at once with exit code 1, its server and load
// processes killed (bench/stop_signal.hpp).
#include "bench/load_generator.hpp"
#include "bench/load_procs.hpp"
#include "bench/number_list.hpp"
#include "bench/option_checks.hpp"
#include "bench/proc_stats.hpp"
#include "bench/servers.hpp"
#include "bench/spawn_measure.hpp"
#include "bench/stop_signal.hpp"
#include "bench/tcp_report.hpp"
#include "bench/tls_cert.hpp"
#include "bench/tls_load.hpp"
#include "bench/tls_report.hpp"
#include "bench/udp_echo.hpp"

#include "actors/config.hpp"
#include "runtime/runtime.hpp"

#include <caf/actor_system_config.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <map>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using bench::rounds;
using bench::row;

struct bench_config : caf::actor_system_config {
  std::string suite = "tcp,udp,spawn";
  std::string servers = "asio,shardwire";
  size_t connections = 50;
  size_t size = 1024;
  std::string sizes;
  std::string shard_counts = "1";
  size_t pipeline = 1;
  double duration = 0.3;
  size_t rounds = 10;
  size_t idle = 10000;
  bool callgrind = false;
  bool keep_callgrind = false;
  size_t callgrind_requests = 20000;
  std::string csv;
  size_t load_procs = 1;
  size_t shards_sweep = 0;
  bool no_pin = false;
  std::string udp_sizes = "64,1024";
  double udp_seconds = 1.0;
  size_t spawn_count = 1000;
  size_t spawn_inflight = 16;
  size_t spawn_churn = 1000;
  std::string spawn_program = "true";
  bool metrics_overhead = false;
  std::string tls_servers = "asio-ssl,shardwire-tls";
  std::string tls_sizes = "1024,16384";
  size_t tls_idle = 2000;
  size_t tls_connectors = 32;
  std::string tls_key = "ec";
  // Internal: run one server in this process.
  std::string serve;
  int ready_fd = -1;
  size_t shards = 1;
  std::string serve_cert;
  std::string serve_key;

  bench_config() {
    opt_group{custom_options_, "global"}
        .add(suite, "suite", "comma list of parts to run: tcp, tls, udp, spawn")
        .add(servers, "servers",
             "comma list of: asio, shardwire, shardwire-cb (callback style), "
             "shardwire-buf (buffered protocol, callback style), "
             "shardwire-nometrics (shardwire with metrics collection off), "
             "asio-mt (Asio with an io_context per thread, as many threads as "
             "shards: the multi-core baseline)")
        .add(connections, "connections,c", "concurrent connections")
        .add(size, "size", "message size in bytes")
        .add(sizes, "sizes", "comma list of sizes to sweep (overrides --size)")
        .add(shard_counts, "shard-counts", "comma list of shard counts")
        .add(pipeline, "pipeline", "messages in flight per connection")
        .add(duration, "duration,d",
             "seconds of load per measurement (one window of one round)")
        .add(rounds, "rounds",
             "measure every server this many times, alternating servers "
             "(kept running, connections open); report medians and the "
             "per-round CPU ratios")
        .add(idle, "idle", "idle connections for the memory figure (0: skip)")
        .add(callgrind, "callgrind", "count instructions per echo instead")
        .add(callgrind_requests, "callgrind-requests", "echoes per run (N)")
        .add(keep_callgrind, "keep-callgrind",
             "keep /tmp/echo_bench.callgrind.* for callgrind_annotate")
        .add(csv, "csv", "append result rows to this CSV file")
        .add(load_procs, "load-procs",
             "TCP load generator processes (0: one per server shard)")
        .add(shards_sweep, "shards-sweep",
             "measure 1..N shards and print the scaling table")
        .add(no_pin, "no-pin",
             "pin neither servers nor load (same placement for any shards)")
        .add(udp_sizes, "udp-sizes", "comma list of UDP datagram sizes")
        .add(udp_seconds, "udp-seconds", "seconds per UDP measurement")
        .add(spawn_count, "spawn-count", "processes per spawn measurement")
        .add(spawn_inflight, "spawn-inflight",
             "children at once in the second spawn row and the churn")
        .add(spawn_churn, "spawn-churn",
             "children in the churn check (0: skip)")
        .add(spawn_program, "spawn-program", "what to spawn (no arguments)")
        .add(metrics_overhead, "metrics-overhead",
             "TCP only: shardwire with metrics collection on and off side "
             "by side (servers asio,shardwire,shardwire-nometrics) and the "
             "ratios of the two")
        .add(tls_servers, "tls-servers",
             "TLS part: comma list of asio-ssl (the baseline), shardwire-tls "
             "(typed protocol), shardwire-tls-cb (callback style)")
        .add(tls_sizes, "tls-sizes", "TLS part: comma list of message sizes")
        .add(tls_idle, "tls-idle",
             "TLS part: idle TLS connections for the memory figure (0: skip)")
        .add(tls_connectors, "tls-connectors",
             "TLS part: concurrent connectors doing full handshakes (0: skip "
             "the handshake figure)")
        .add(tls_key, "tls-key",
             "TLS part: the throwaway server key, ec (P-256) or rsa (2048)")
        .add(serve, "serve", "internal: run this server kind here")
        .add(ready_fd, "ready-fd", "internal: fd to report the port on")
        .add(shards, "shards", "internal: shard count for --serve")
        .add(serve_cert, "serve-cert", "internal: certificate for --serve")
        .add(serve_key, "serve-key", "internal: key for --serve");
  }
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Pins this process (its future threads included) to `cpus`; an empty list
// means every CPU.
void pin_to_cpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpus.empty()) {
    for (unsigned i = 0; i < std::thread::hardware_concurrency(); ++i)
      CPU_SET(i, &set);
  } else {
    for (int cpu : cpus)
      CPU_SET(cpu, &set);
  }
  ::sched_setaffinity(0, sizeof(set), &set);
}

// Where a TCP measurement runs. With a core for every server shard and every
// load process, the server gets CPUs [0, shards) and the load processes the
// next ones. Otherwise (this project's 2-core machine) a 1-shard server gets
// CPU 0, a multi-shard server is not pinned, and the load runs on CPU 1.
// --no-pin leaves everything to the scheduler.
struct placement {
  std::vector<int> server; // empty: not pinned
  std::vector<int> load;   // empty: not pinned
};

placement place(size_t server_threads, size_t load_procs, bool no_pin) {
  placement p;
  if (no_pin) return p;
  auto n = static_cast<size_t>(std::thread::hardware_concurrency());
  if (n < 2) return p;
  if (n >= server_threads + load_procs) {
    for (size_t i = 0; i < server_threads; ++i)
      p.server.push_back(static_cast<int>(i));
    for (size_t i = 0; i < load_procs; ++i)
      p.load.push_back(static_cast<int>(server_threads + i));
    return p;
  }
  if (server_threads <= 1) p.server.push_back(0);
  p.load.push_back(1);
  return p;
}

size_t load_procs_for(const bench_config& cfg, size_t server_threads) {
  return cfg.load_procs == 0 ? server_threads : cfg.load_procs;
}

bool tls_kind(const std::string& kind) {
  return kind == "asio-ssl" || kind == "shardwire-tls" ||
         kind == "shardwire-tls-cb";
}

int serve(const std::string& kind, int ready_fd, size_t shards,
          const bench::server_tls& tls) {
  bench::raise_fd_limit();
  if (kind == "asio") return bench::run_asio_server(ready_fd, 1);
  if (kind == "asio-ssl") return bench::run_asio_tls_server(ready_fd, tls);
  if (kind == "shardwire-tls")
    return bench::run_shardwire_server(
        ready_fd, shards, bench::shardwire_style::typed, true, tls);
  if (kind == "shardwire-tls-cb")
    return bench::run_shardwire_server(
        ready_fd, shards, bench::shardwire_style::callback, true, tls);
  if (kind == "asio-mt") return bench::run_asio_server(ready_fd, shards);
  if (kind == "shardwire")
    return bench::run_shardwire_server(ready_fd, shards,
                                       bench::shardwire_style::typed);
  if (kind == "shardwire-cb")
    return bench::run_shardwire_server(ready_fd, shards,
                                       bench::shardwire_style::callback);
  if (kind == "shardwire-buf")
    return bench::run_shardwire_server(ready_fd, shards,
                                       bench::shardwire_style::buffered);
  if (kind == "shardwire-nometrics")
    return bench::run_shardwire_server(ready_fd, shards,
                                       bench::shardwire_style::typed, false);
  // main refused any other kind.
  std::cerr << "error: --serve: unknown server kind '" << kind << "'\n";
  return 1;
}

struct child {
  pid_t pid = -1;
  uint16_t port = 0;
};

// Starts a server process; under callgrind when `cg_out` is set. TLS
// kinds serve with `tls`'s certificate.
child start_server(const std::string& kind, size_t shards,
                   const std::vector<int>& cpus, const std::string& cg_out,
                   const bench::server_tls& tls = {}) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  auto parent = ::getpid();
  pid_t pid;
  {
    bench::stop_signal_block block; // registered before a stop can come
    pid = ::fork();
    if (pid > 0) bench::track_child(pid);
  }
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    bench::in_forked_child(parent);
    ::close(fds[0]);
    pin_to_cpus(cpus);
    if (cg_out.empty()) ::_exit(serve(kind, fds[1], shards, tls));
    // Resolve our own path now: inside valgrind /proc/self/exe is valgrind.
    char path[4096] = {};
    auto len = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
    auto self = std::string(path, len > 0 ? static_cast<size_t>(len) : 0);
    std::vector<std::string> args{"valgrind",
                                  "--tool=callgrind",
                                  "--callgrind-out-file=" + cg_out,
                                  self,
                                  "--serve=" + kind,
                                  "--ready-fd=" + std::to_string(fds[1]),
                                  "--shards=" + std::to_string(shards)};
    if (tls) {
      args.push_back("--serve-cert=" + tls.cert_file);
      args.push_back("--serve-key=" + tls.key_file);
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("valgrind", argv.data());
    std::perror("execvp valgrind");
    ::_exit(127);
  }
  ::close(fds[1]);
  child c;
  c.pid = pid;
  if (::read(fds[0], &c.port, sizeof(c.port)) != sizeof(c.port)) {
    if (cg_out.empty())
      throw std::runtime_error("server " + kind + " did not start");
    // valgrind missing, or a build it cannot run (a sanitizer build).
    throw std::runtime_error("--callgrind: server " + kind +
                             " did not start under valgrind (is valgrind "
                             "installed, and is this a build without "
                             "sanitizers?)");
  }
  ::close(fds[0]);
  return c;
}

int stop_server(child& c) {
  ::kill(c.pid, SIGTERM);
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  bench::untrack_child(c.pid);
  return status;
}

// A row from one timed run of the load against a server.
row make_row(const std::string& kind, size_t shards, size_t size,
             size_t load_procs, const bench::load_result& res,
             double cpu_seconds) {
  row r;
  r.server = kind;
  r.shards = shards;
  r.size = size;
  r.load_procs = load_procs;
  r.req_per_s = static_cast<double>(res.requests) / res.seconds;
  r.mib_per_s = static_cast<double>(res.bytes) / res.seconds / 1048576.0;
  r.p50_us = res.percentile(50);
  r.p99_us = res.percentile(99);
  r.cpu_us_per_req = res.requests > 0
                         ? cpu_seconds * 1e6 / static_cast<double>(res.requests)
                         : 0;
  r.corrupt = res.corrupt;
  r.failed = res.failed;
  return r;
}

// Server RSS growth per connection while `cfg.idle` more connections are
// opened and pinged once; they are closed again before this returns.
double idle_bytes_per_conn(const bench_config& cfg, const child& c) {
  auto rss0 = bench::rss_bytes(c.pid);
  auto fds = bench::open_idle(c.port, cfg.idle);
  auto rss1 = bench::rss_bytes(c.pid);
  for (int fd : fds)
    ::close(fd);
  return static_cast<double>(rss1 - rss0) / static_cast<double>(cfg.idle);
}

// One server, started for this measurement and stopped after it: for
// points whose load runs in several processes (forked per run).
row measure(const bench_config& cfg, const std::string& kind, size_t shards,
            size_t size, bool with_idle) {
  auto threads = kind == "asio" ? size_t{1} : shards;
  auto load_procs = load_procs_for(cfg, threads);
  auto where = place(threads, load_procs, cfg.no_pin);
  auto c = start_server(kind, shards, where.server, {});
  pin_to_cpus(where.load); // the load runs here when it is one process
  bench::load_options lo;
  lo.port = c.port;
  lo.connections = cfg.connections;
  lo.size = size;
  lo.pipeline = cfg.pipeline;
  // Warm-up: connections, pools and caches.
  lo.duration = 0.5;
  bench::run_load_procs(lo, load_procs, where.load);
  lo.duration = cfg.duration;
  auto cpu0 = bench::cpu_seconds(c.pid);
  auto res = bench::run_load_procs(lo, load_procs, where.load);
  auto cpu1 = bench::cpu_seconds(c.pid);
  auto r = make_row(kind, shards, size, load_procs, res, cpu1 - cpu0);
  if (with_idle && cfg.idle > 0)
    r.idle_bytes_per_conn = idle_bytes_per_conn(cfg, c);
  stop_server(c);
  return r;
}

// A server kept running for all rounds of one message size, with its
// connections open, so that its measurement windows can alternate with
// those of the other servers a few hundred milliseconds apart: this
// machine's speed drifts by 20 % and more over seconds, and windows close
// in time see the same drift.
struct live_server {
  std::string kind;
  size_t shards = 1;
  placement where;
  child proc;
  std::unique_ptr<bench::load_session> session;
};

std::unique_ptr<live_server> start_live(const bench_config& cfg,
                                        const std::string& kind, size_t shards,
                                        size_t size) {
  auto ls = std::make_unique<live_server>();
  ls->kind = kind;
  ls->shards = shards;
  ls->where = place(kind == "asio" ? size_t{1} : shards, 1, cfg.no_pin);
  ls->proc = start_server(kind, shards, ls->where.server, {});
  pin_to_cpus(ls->where.load);
  bench::load_options lo;
  lo.port = ls->proc.port;
  lo.connections = cfg.connections;
  lo.size = size;
  lo.pipeline = cfg.pipeline;
  ls->session = std::make_unique<bench::load_session>(lo);
  // Warm-up: pools and caches; connection failures show in the first row.
  ls->session->run(0.5);
  return ls;
}

// One timed window of load against a live server.
struct window {
  bench::load_result res;
  double cpu_seconds = 0;
};

window run_window(const bench_config& cfg, live_server& ls) {
  pin_to_cpus(ls.where.load);
  window w;
  auto cpu0 = bench::cpu_seconds(ls.proc.pid);
  w.res = ls.session->run(cfg.duration);
  w.cpu_seconds = bench::cpu_seconds(ls.proc.pid) - cpu0;
  return w;
}

row window_row(const live_server& ls, size_t size, const window& w) {
  return make_row(ls.kind, ls.shards, size, 1, w.res, w.cpu_seconds);
}

// One row from several windows of the same server.
row merged_row(const live_server& ls, size_t size,
               const std::vector<window>& ws) {
  window all;
  for (auto& w : ws) {
    all.res.requests += w.res.requests;
    all.res.bytes += w.res.bytes;
    all.res.seconds += w.res.seconds;
    all.res.corrupt += w.res.corrupt;
    all.res.failed += w.res.failed;
    all.res.latencies_us.insert(all.res.latencies_us.end(),
                                w.res.latencies_us.begin(),
                                w.res.latencies_us.end());
    all.cpu_seconds += w.cpu_seconds;
  }
  return window_row(ls, size, all);
}

uint64_t callgrind_total(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("summary:", 0) == 0 || line.rfind("totals:", 0) == 0)
      return std::stoull(line.substr(line.find(':') + 1));
  return 0;
}

double measure_ir(const bench_config& cfg, const std::string& kind,
                  size_t shards, size_t size,
                  const bench::server_tls& tls = {}) {
  uint64_t totals[2] = {0, 0};
  uint64_t counts[2] = {cfg.callgrind_requests, 2 * cfg.callgrind_requests};
  for (int i = 0; i < 2; ++i) {
    auto out = "/tmp/echo_bench.callgrind." + kind + "." + std::to_string(i);
    auto threads = kind == "asio" ? size_t{1} : shards;
    auto where = place(threads, 1, cfg.no_pin);
    auto c = start_server(kind, shards, where.server, out, tls);
    pin_to_cpus(where.load);
    bench::load_options lo;
    lo.port = c.port;
    lo.connections = cfg.connections;
    lo.size = size;
    lo.pipeline = cfg.pipeline;
    lo.requests = counts[i];
    // Over TLS the handshakes are in both runs, and cancel out.
    auto res = tls ? bench::tls_load_session{lo}.run(0, lo.requests)
                   : bench::run_load(lo);
    counts[i] = res.requests;
    stop_server(c);
    totals[i] = callgrind_total(out);
    if (!cfg.keep_callgrind) std::remove(out.c_str());
  }
  return static_cast<double>(totals[1] - totals[0]) /
         static_cast<double>(counts[1] - counts[0]);
}

bool known_server(const std::string& kind) {
  return kind == "asio" || kind == "asio-mt" || kind == "shardwire" ||
         kind == "shardwire-cb" || kind == "shardwire-buf" ||
         kind == "shardwire-nometrics";
}

std::vector<std::string> bad_suites(const std::vector<std::string>& parts) {
  std::vector<std::string> bad;
  for (auto& p : parts)
    if (p != "tcp" && p != "tls" && p != "udp" && p != "spawn")
      bad.push_back(p);
  return bad;
}

bool has(const std::vector<std::string>& parts, const char* name) {
  return std::find(parts.begin(), parts.end(), name) != parts.end();
}

// One point of the TCP table: the server kind and its shard count.
struct point {
  std::string kind;
  size_t shards;
};

// Every round of every point of one message size, timed: by_round[k][i] is
// point i in round k. Points whose load runs in one process are measured
// on live servers in alternating windows (see live_server); the others are
// started and stopped per measurement. With a live Asio point, each other
// point is measured between two Asio windows (A x A y A ...) and its CPU
// ratio taken against their mean, so a drift over the three windows
// cancels; the order of the other points rotates from round to round.
// Memory is measured once per point, after the windows.
void measure_size(const bench_config& cfg, const std::vector<point>& points,
                  size_t size, rounds& by_round) {
  std::vector<std::unique_ptr<live_server>> live(points.size());
  auto base = points.size(); // the live Asio point, if any
  for (size_t i = 0; i < points.size(); ++i) {
    auto& p = points[i];
    auto threads = p.kind == "asio" ? size_t{1} : p.shards;
    if (load_procs_for(cfg, threads) == 1) {
      live[i] = start_live(cfg, p.kind, p.shards, size);
      if (p.kind == "asio" && base == points.size()) base = i;
    }
  }
  std::vector<size_t> others;
  for (size_t i = 0; i < points.size(); ++i)
    if (i != base) others.push_back(i);
  auto say = [&](size_t i, size_t round) {
    std::cerr << "measuring " << points[i].kind
              << " shards=" << points[i].shards << " size=" << size;
    if (cfg.rounds > 1)
      std::cerr << " round " << round + 1 << '/' << cfg.rounds;
    std::cerr << " ...\n";
  };
  for (size_t round = 0; round < cfg.rounds; ++round) {
    std::vector<row> rows(points.size());
    std::vector<window> base_windows;
    row before; // the row of the last Asio window
    auto measure_base = [&] {
      say(base, round);
      base_windows.push_back(run_window(cfg, *live[base]));
      return window_row(*live[base], size, base_windows.back());
    };
    if (base < points.size()) before = measure_base();
    for (size_t k = 0; k < others.size(); ++k) {
      auto i = others[(k + round) % others.size()];
      say(i, round);
      rows[i] = live[i] ? window_row(*live[i], size, run_window(cfg, *live[i]))
                        : measure(cfg, points[i].kind, points[i].shards, size,
                                  round == 0);
      if (base < points.size()) {
        auto after = measure_base();
        auto mean = [&](double row::*field) {
          return (before.*field + after.*field) / 2;
        };
        rows[i].base_cpu_us_per_req = mean(&row::cpu_us_per_req);
        rows[i].base_p99_us = mean(&row::p99_us);
        rows[i].base_req_per_s = mean(&row::req_per_s);
        before = std::move(after);
      }
    }
    if (base < points.size())
      rows[base] = merged_row(*live[base], size, base_windows);
    by_round.push_back(std::move(rows));
  }
  // Memory last: 10,000 more connections would change the windows after.
  for (size_t i = 0; i < points.size(); ++i) {
    if (!live[i]) continue;
    if (cfg.idle > 0)
      by_round.front()[i].idle_bytes_per_conn =
          idle_bytes_per_conn(cfg, live[i]->proc);
    live[i]->session.reset();
    stop_server(live[i]->proc);
  }
}

// The callgrind rows of one message size (one round: instruction counts do
// not drift).
std::vector<row> count_size(const bench_config& cfg,
                            const std::vector<point>& points, size_t size) {
  std::vector<row> rows;
  for (auto& p : points) {
    std::cerr << "counting " << p.kind << " shards=" << p.shards
              << " size=" << size << " ...\n";
    row r;
    r.server = p.kind;
    r.shards = p.shards;
    r.size = size;
    r.ir_per_echo = measure_ir(cfg, p.kind, p.shards, size);
    rows.push_back(r);
  }
  return rows;
}

// The TCP part; returns false if any measurement saw corrupt bytes or failed
// connections.
bool run_tcp(const bench_config& cfg) {
  // Both lists were checked in main.
  auto sizes = *bench::positive_list(cfg.sizes);
  if (sizes.empty()) sizes.push_back(cfg.size);
  std::vector<size_t> shard_counts;
  if (cfg.shards_sweep > 0) {
    for (size_t n = 1; n <= cfg.shards_sweep; ++n)
      shard_counts.push_back(n);
  } else {
    shard_counts = *bench::positive_list(cfg.shard_counts);
  }
  std::vector<point> points;
  for (auto& kind : split(cfg.servers))
    for (auto shards : kind == "asio" ? std::vector<size_t>{1} : shard_counts)
      points.push_back({kind, shards});
  bool ok = true;
  // Timed: per size, every round measures every point once (alternating,
  // so drifts of a shared machine hit all servers alike); the table shows
  // per-metric medians. by_round[k] holds every point of every size.
  rounds by_round(cfg.callgrind ? 1 : cfg.rounds);
  for (auto size : sizes) {
    if (cfg.callgrind) {
      for (auto& r : count_size(cfg, points, size))
        by_round[0].push_back(r);
      continue;
    }
    rounds rounds;
    measure_size(cfg, points, size, rounds);
    for (size_t k = 0; k < rounds.size(); ++k)
      for (auto& r : rounds[k]) {
        ok = ok && r.corrupt == 0 && r.failed == 0;
        by_round[k].push_back(r);
      }
  }
  auto rows = bench::summarize(by_round);
  auto load = cfg.load_procs == 0 ? std::string{"<shards>"}
                                  : std::to_string(cfg.load_procs);
  if (cfg.callgrind)
    std::printf("\nTCP echo: %zu connections, pipeline %zu, load in %s "
                "process(es), callgrind\n",
                cfg.connections, cfg.pipeline, load.c_str());
  else
    std::printf("\nTCP echo: %zu connections, pipeline %zu, load in %s "
                "process(es), %zu round(s) of %.2f s per server, medians\n",
                cfg.connections, cfg.pipeline, load.c_str(), cfg.rounds,
                cfg.duration);
  print_rows(rows, cfg.callgrind);
  if (cfg.rounds > 1 && !cfg.callgrind) print_round_ratios(by_round);
  if (cfg.shards_sweep > 0 && !cfg.callgrind) print_scaling(rows, by_round);
  if (cfg.metrics_overhead)
    bench::print_metrics_overhead(by_round, cfg.callgrind);
  if (!cfg.csv.empty()) bench::append_csv(cfg.csv, rows);
  return ok;
}

// -- the TLS part -------------------------------------------------------------
//
// Same method as the TCP part at one shard: every server of a size runs
// side by side, its echo connections open (handshaken before any window),
// and is measured in short windows between two windows of asio-ssl, its
// ratios taken against their mean; idle memory last. Handshakes the same
// way on fresh servers. The load is OpenSSL clients in this process
// (bench/tls_load.hpp), on the CPU the TCP load gets.

// A TLS server kept running for all rounds of one message size, with its
// echo connections open.
struct live_tls_server {
  child proc;
  std::unique_ptr<bench::tls_load_session> session;
};

// `n_rounds` rounds over `n` points: measure(i, round) takes one window
// of point i; each point other than `base` (none if base == n) is measured
// between two windows of `base` and its row gets their mean as its base_*
// figures; the order of the others rotates from round to round. to_row(i,
// windows) makes a row; base's row of a round is made from all its windows
// there.
template <class Measure, class ToRow>
rounds alternate(size_t n, size_t base, size_t n_rounds, Measure measure,
                 ToRow to_row) {
  using window_type = decltype(measure(size_t{0}, size_t{0}));
  rounds by_round;
  std::vector<size_t> others;
  for (size_t i = 0; i < n; ++i)
    if (i != base) others.push_back(i);
  for (size_t round = 0; round < n_rounds; ++round) {
    std::vector<row> rows(n);
    std::vector<window_type> base_windows;
    row before;
    auto measure_base = [&] {
      base_windows.push_back(measure(base, round));
      return to_row(base, std::vector<window_type>{base_windows.back()});
    };
    if (base < n) before = measure_base();
    for (size_t k = 0; k < others.size(); ++k) {
      auto i = others[(k + round) % others.size()];
      rows[i] = to_row(i, std::vector<window_type>{measure(i, round)});
      if (base < n) {
        auto after = measure_base();
        auto mean = [&](double row::*field) {
          return (before.*field + after.*field) / 2;
        };
        rows[i].base_cpu_us_per_req = mean(&row::cpu_us_per_req);
        rows[i].base_p99_us = mean(&row::p99_us);
        rows[i].base_req_per_s = mean(&row::req_per_s);
        before = std::move(after);
      }
    }
    if (base < n) rows[base] = to_row(base, base_windows);
    by_round.push_back(std::move(rows));
  }
  return by_round;
}

window merge_windows(const std::vector<window>& ws) {
  window all;
  for (auto& w : ws) {
    all.res.requests += w.res.requests;
    all.res.bytes += w.res.bytes;
    all.res.seconds += w.res.seconds;
    all.res.corrupt += w.res.corrupt;
    all.res.failed += w.res.failed;
    all.res.latencies_us.insert(all.res.latencies_us.end(),
                                w.res.latencies_us.begin(),
                                w.res.latencies_us.end());
    all.cpu_seconds += w.cpu_seconds;
  }
  return all;
}

// One window of handshakes against a server.
struct handshake_window {
  bench::handshake_result res;
  double cpu_seconds = 0;
};

row handshake_row(const std::string& kind,
                  const std::vector<handshake_window>& ws) {
  bench::handshake_result all;
  double cpu = 0;
  for (auto& w : ws) {
    all.handshakes += w.res.handshakes;
    all.failed += w.res.failed;
    all.resumed += w.res.resumed;
    all.seconds += w.res.seconds;
    cpu += w.cpu_seconds;
  }
  row r;
  r.server = kind;
  r.size = 0;
  r.req_per_s =
      all.seconds > 0 ? static_cast<double>(all.handshakes) / all.seconds : 0;
  r.cpu_us_per_req =
      all.handshakes > 0 ? cpu * 1e6 / static_cast<double>(all.handshakes) : 0;
  r.failed = all.failed;
  r.corrupt = all.resumed;
  return r;
}

// Server RSS growth per connection while `cfg.tls_idle` more TLS
// connections are opened, handshaken and pinged once; closed again before
// this returns.
double tls_idle_bytes_per_conn(const bench_config& cfg, const child& c) {
  auto rss0 = bench::rss_bytes(c.pid);
  bench::tls_idle_connections idle{c.port, cfg.tls_idle};
  auto rss1 = bench::rss_bytes(c.pid);
  return static_cast<double>(rss1 - rss0) / static_cast<double>(cfg.tls_idle);
}

// The echo rows of one message size, by round (idle memory in the first
// round when `with_idle`).
rounds measure_tls_size(const bench_config& cfg,
                        const std::vector<std::string>& kinds, size_t base,
                        size_t size, const bench::server_tls& tls,
                        const placement& where, bool with_idle,
                        std::string& negotiated) {
  std::vector<live_tls_server> live(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    live[i].proc = start_server(kinds[i], 1, where.server, {}, tls);
    pin_to_cpus(where.load);
    bench::load_options lo;
    lo.port = live[i].proc.port;
    lo.connections = cfg.connections;
    lo.size = size;
    lo.pipeline = cfg.pipeline;
    live[i].session = std::make_unique<bench::tls_load_session>(lo);
    if (negotiated.empty()) negotiated = live[i].session->negotiated();
    live[i].session->run(0.5); // warm-up; connection failures show later
  }
  auto by_round = alternate(
      kinds.size(), base, cfg.rounds,
      [&](size_t i, size_t round) {
        std::cerr << "measuring " << kinds[i] << " size=" << size << " round "
                  << round + 1 << '/' << cfg.rounds << " ...\n";
        pin_to_cpus(where.load);
        window w;
        auto cpu0 = bench::cpu_seconds(live[i].proc.pid);
        w.res = live[i].session->run(cfg.duration);
        w.cpu_seconds = bench::cpu_seconds(live[i].proc.pid) - cpu0;
        return w;
      },
      [&](size_t i, const std::vector<window>& ws) {
        auto w = merge_windows(ws);
        return make_row(kinds[i], 1, size, 1, w.res, w.cpu_seconds);
      });
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (with_idle) {
      std::cerr << "measuring " << kinds[i] << " idle x " << cfg.tls_idle
                << " ...\n";
      by_round.front()[i].idle_bytes_per_conn =
          tls_idle_bytes_per_conn(cfg, live[i].proc);
    }
    live[i].session.reset();
    stop_server(live[i].proc);
  }
  return by_round;
}

// The handshake rows, by round, on fresh servers.
rounds measure_handshakes(const bench_config& cfg,
                          const std::vector<std::string>& kinds, size_t base,
                          const bench::server_tls& tls,
                          const placement& where) {
  std::vector<child> procs;
  for (auto& kind : kinds) {
    procs.push_back(start_server(kind, 1, where.server, {}, tls));
    pin_to_cpus(where.load);
    bench::run_handshakes(procs.back().port, cfg.tls_connectors, 0.2);
  }
  auto by_round = alternate(
      kinds.size(), base, cfg.rounds,
      [&](size_t i, size_t round) {
        std::cerr << "measuring " << kinds[i] << " handshakes round "
                  << round + 1 << '/' << cfg.rounds << " ...\n";
        pin_to_cpus(where.load);
        handshake_window w;
        auto cpu0 = bench::cpu_seconds(procs[i].pid);
        w.res = bench::run_handshakes(procs[i].port, cfg.tls_connectors,
                                      cfg.duration);
        w.cpu_seconds = bench::cpu_seconds(procs[i].pid) - cpu0;
        return w;
      },
      [&](size_t i, const std::vector<handshake_window>& ws) {
        return handshake_row(kinds[i], ws);
      });
  for (auto& c : procs)
    stop_server(c);
  return by_round;
}

// The TLS part; returns false if any measurement saw corrupt bytes, failed
// connections or a resumed session.
bool run_tls(const bench_config& cfg) {
  bench::tls_cert cert{cfg.tls_key == "rsa" ? bench::tls_key_type::rsa
                                            : bench::tls_key_type::ec};
  bench::server_tls tls{cert.cert_file(), cert.key_file()};
  auto kinds = split(cfg.tls_servers);
  auto sizes = *bench::positive_list(cfg.tls_sizes); // checked in main
  auto base = static_cast<size_t>(
      std::find(kinds.begin(), kinds.end(), bench::tls_base) - kinds.begin());
  auto where = place(1, 1, cfg.no_pin);
  auto key = cfg.tls_key == "rsa" ? "RSA 2048" : "ECDSA P-256";
  if (cfg.callgrind) {
    std::vector<row> rows;
    for (auto size : sizes)
      for (auto& kind : kinds) {
        std::cerr << "counting " << kind << " size=" << size << " ...\n";
        row r;
        r.server = kind;
        r.size = size;
        r.ir_per_echo = measure_ir(cfg, kind, 1, size, tls);
        rows.push_back(r);
      }
    std::printf("\nTLS echo: %zu connections, pipeline %zu, server key %s, "
                "callgrind\n",
                cfg.connections, cfg.pipeline, key);
    print_rows(rows, true, bench::tls_base);
    return true;
  }
  std::string negotiated;
  rounds echo_rounds(cfg.rounds);
  for (size_t k = 0; k < sizes.size(); ++k) {
    auto by = measure_tls_size(cfg, kinds, base, sizes[k], tls, where,
                               k == 0 && cfg.tls_idle > 0, negotiated);
    for (size_t r = 0; r < by.size(); ++r)
      for (auto& x : by[r])
        echo_rounds[r].push_back(std::move(x));
  }
  rounds hs_rounds;
  if (cfg.tls_connectors > 0)
    hs_rounds = measure_handshakes(cfg, kinds, base, tls, where);
  bool ok = true;
  for (auto* by : {&echo_rounds, &hs_rounds})
    for (auto& rr : *by)
      for (auto& r : rr)
        ok = ok && r.corrupt == 0 && r.failed == 0;
  auto echo = bench::summarize(echo_rounds);
  std::printf("\nTLS echo (%s, server key %s, 1 shard): %zu connections, "
              "pipeline %zu, %zu round(s) of %.2f s per server, medians; "
              "idle: %zu TLS connections\n",
              negotiated.c_str(), key, cfg.connections, cfg.pipeline,
              cfg.rounds, cfg.duration, cfg.tls_idle);
  print_rows(echo, false, bench::tls_base);
  if (cfg.rounds > 1) print_round_ratios(echo_rounds, bench::tls_base);
  std::vector<row> hs;
  if (!hs_rounds.empty()) {
    hs = bench::summarize(hs_rounds);
    bench::print_handshakes(hs, cfg.tls_connectors);
  }
  bench::print_tls_targets(echo, hs);
  if (!cfg.csv.empty()) bench::append_csv(cfg.csv, echo);
  return ok;
}

// The UDP and spawn parts share one shardwire runtime in this process, with
// one shard; started after the TCP part, whose load processes are forked.
bool run_in_process(const bench_config& cfg, bool udp, bool spawn,
                    char* argv0) {
  pin_to_cpus({}); // the runtime's threads and the clients share all CPUs
  shardwire::config rcfg;
  rcfg.shards = 1;
  char* args[] = {argv0, nullptr};
  if (auto rc = shardwire::parse_args(rcfg, 1, args)) return false;
  shardwire::runtime rt{rcfg};
  bool ok = true;
  if (udp) {
    std::vector<bench::udp_echo_result> rows;
    // Checked in main. Held here: a range-for over a member of the
    // temporary optional would outlive it.
    auto sizes = *bench::positive_list(cfg.udp_sizes);
    for (auto size : sizes) {
      std::cerr << "measuring UDP echo size=" << size << " ...\n";
      rows.push_back(bench::measure_udp_echo(rt, size, cfg.udp_seconds));
    }
    std::printf("\n");
    bench::print_udp_echo(rows, cfg.udp_seconds);
  }
  if (spawn) {
    std::cerr << "measuring spawn x " << cfg.spawn_count << " ...\n";
    auto rows = bench::measure_spawn(rt, cfg.spawn_program, cfg.spawn_count,
                                     {1, cfg.spawn_inflight});
    std::printf("\nsubprocess spawn: %zu x `%s` per point (stdin/stdout/"
                "stderr as pipes), 1 shard\n",
                cfg.spawn_count, cfg.spawn_program.c_str());
    bench::print_spawn(rows);
    for (auto& r : rows)
      ok = ok && r.failed == 0;
    if (cfg.spawn_churn > 0) {
      auto churn = bench::spawn_churn(rt, cfg.spawn_program, cfg.spawn_churn,
                                      cfg.spawn_inflight);
      bench::print_churn(churn);
      ok = ok && churn.ok();
    }
  }
  rt.shutdown();
  return ok;
}

// Upper bounds of the options: beyond them a run exhausts memory,
// descriptors or processes (or takes years) before it measures anything.
constexpr size_t max_connections = 100'000;
constexpr size_t max_size = 16 * 1024 * 1024;
constexpr size_t max_pipeline = 1024;
constexpr size_t max_rounds = 10'000;
constexpr size_t max_load_procs = 256;
constexpr size_t max_count = 10'000'000;
constexpr size_t max_inflight = 1024;
constexpr double max_seconds = 86400;
constexpr size_t max_udp_size = 65507;

bool valid_options(const bench_config& cfg) {
  using bench::check_range;
  using shardwire::check_option;
  auto parts = split(cfg.suite);
  bool ok = check_option(!parts.empty() && bad_suites(parts).empty(), "suite",
                         "'" + cfg.suite.substr(0, 100) +
                             "' is not a comma list of tcp, tls, udp, spawn");
  auto kinds = split(cfg.servers);
  ok &= check_option(
      !kinds.empty() && std::all_of(kinds.begin(), kinds.end(), known_server),
      "servers",
      "'" + cfg.servers.substr(0, 100) +
          "' is not a comma list of asio, asio-mt, shardwire, shardwire-cb, "
          "shardwire-buf, shardwire-nometrics");
  auto shards = shardwire::max_shards();
  ok &= check_range(cfg.connections, 1, max_connections, "connections");
  ok &= check_range(cfg.size, 1, max_size, "size", " bytes");
  ok &= bench::check_list(cfg.sizes, 1, max_size, "sizes", nullptr, true);
  ok &= bench::check_list(cfg.shard_counts, 1, shards, "shard-counts", nullptr);
  ok &= check_range(cfg.pipeline, 1, max_pipeline, "pipeline");
  ok &= bench::check_seconds(cfg.duration, max_seconds, "duration");
  ok &= check_range(cfg.rounds, 1, max_rounds, "rounds");
  ok &= check_range(cfg.idle, 0, max_connections, "idle", " (0: skip)");
  ok &= check_range(cfg.callgrind_requests, 1, 1'000'000'000,
                    "callgrind-requests");
  ok &= check_range(cfg.load_procs, 0, max_load_procs, "load-procs",
                    " (0: one per server shard)");
  ok &= check_range(cfg.shards_sweep, 0, shards, "shards-sweep");
  ok &= bench::check_list(cfg.udp_sizes, 1, max_udp_size, "udp-sizes", nullptr);
  ok &= bench::check_seconds(cfg.udp_seconds, max_seconds, "udp-seconds");
  ok &= check_range(cfg.spawn_count, 1, max_count, "spawn-count");
  ok &= check_range(cfg.spawn_inflight, 1, max_inflight, "spawn-inflight");
  ok &= check_range(cfg.spawn_churn, 0, max_count, "spawn-churn", " (0: skip)");
  ok &= check_option(bench::runnable(cfg.spawn_program), "spawn-program",
                     "'" + cfg.spawn_program.substr(0, 200) +
                         "' is not an executable file (in PATH)");
  auto tls_kinds = split(cfg.tls_servers);
  ok &=
      check_option(!tls_kinds.empty() && std::all_of(tls_kinds.begin(),
                                                     tls_kinds.end(), tls_kind),
                   "tls-servers",
                   "'" + cfg.tls_servers.substr(0, 100) +
                       "' is not a comma list of asio-ssl, shardwire-tls, "
                       "shardwire-tls-cb");
  ok &= bench::check_list(cfg.tls_sizes, 1, max_size, "tls-sizes", nullptr);
  ok &= check_range(cfg.tls_idle, 0, max_connections, "tls-idle", " (0: skip)");
  ok &= check_range(cfg.tls_connectors, 0, max_inflight, "tls-connectors",
                    " (0: skip)");
  ok &= check_option(cfg.tls_key == "ec" || cfg.tls_key == "rsa", "tls-key",
                     "'" + cfg.tls_key.substr(0, 100) + "' is not ec or rsa");
  auto readable = [](const std::string& path) {
    return path.empty() || ::access(path.c_str(), R_OK) == 0;
  };
  ok &= check_option(readable(cfg.serve_cert), "serve-cert",
                     "'" + cfg.serve_cert.substr(0, 200) +
                         "' is not a readable file");
  ok &= check_option(readable(cfg.serve_key), "serve-key",
                     "'" + cfg.serve_key.substr(0, 200) +
                         "' is not a readable file");
  if (!cfg.serve.empty()) {
    ok &= check_option(known_server(cfg.serve) || tls_kind(cfg.serve), "serve",
                       "'" + cfg.serve.substr(0, 100) +
                           "' is not asio, asio-mt, shardwire, shardwire-cb, "
                           "shardwire-buf, shardwire-nometrics, asio-ssl, "
                           "shardwire-tls or shardwire-tls-cb");
    if (tls_kind(cfg.serve))
      ok &= check_option(!cfg.serve_cert.empty() && !cfg.serve_key.empty(),
                         "serve-cert",
                         "a TLS server kind needs --serve-cert and "
                         "--serve-key");
    ok &= check_option(cfg.ready_fd >= 0 && ::fcntl(cfg.ready_fd, F_GETFD) >= 0,
                       "ready-fd",
                       std::to_string(cfg.ready_fd) +
                           " is not an open descriptor of this process");
    ok &= check_range(cfg.shards, 1, shards, "shards");
  }
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  bench::stop_on_signal();
  bench_config cfg;
  if (auto rc = shardwire::parse_options(cfg, argc, argv,
                                         [&] { return valid_options(cfg); }))
    return *rc;
  if (!cfg.serve.empty())
    return serve(cfg.serve, cfg.ready_fd, cfg.shards,
                 {cfg.serve_cert, cfg.serve_key});
  if (cfg.metrics_overhead) {
    cfg.suite = "tcp";
    cfg.servers = "asio,shardwire,shardwire-nometrics";
  }
  auto parts = split(cfg.suite);
  bench::raise_fd_limit();
  bool ok = true;
  try {
    // TCP first: it forks servers and load processes, which wants a process
    // without threads (the runtime of the other parts has some).
    if (has(parts, "tcp")) ok = run_tcp(cfg) && ok;
    if (has(parts, "tls")) ok = run_tls(cfg) && ok;
    bool udp = has(parts, "udp") && !cfg.callgrind;
    bool spawn = has(parts, "spawn") && !cfg.callgrind;
    if (udp || spawn) ok = run_in_process(cfg, udp, spawn, argv[0]) && ok;
  } catch (const std::exception& e) {
    // A server that did not start, fork or pipe failing: no result, and
    // no server or load process left behind.
    bench::kill_children();
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
  return ok ? 0 : 1;
}
