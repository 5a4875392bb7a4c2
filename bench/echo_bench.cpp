// shardwire's echo benchmark: shardwire servers against a plain Asio echo
// server measured in the same run, each server in its own process on its own
// core, the load generator on another.
//
//   echo_bench                         # 50 conns, 1 KiB, 3 s, 10,000 idle
//   echo_bench --sizes=64,1024,16384 --shard-counts=1,2 --csv=out.csv
//   echo_bench --callgrind             # user-space instructions per echo
//
// Figures per server: req/s, MiB/s, p50/p99 latency, server CPU per request
// (user+sys from /proc), memory per idle connection (server RSS growth over
// --idle connections), and in --callgrind mode instructions per echo
// ((Ir(2N) - Ir(N)) / N, all threads). Ratios are against the Asio baseline
// of the same run.
#include "bench/load_generator.hpp"
#include "bench/proc_stats.hpp"
#include "bench/servers.hpp"

#include <caf/actor_system_config.hpp>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
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

struct bench_config : caf::actor_system_config {
  std::string servers = "asio,shardwire";
  size_t connections = 50;
  size_t size = 1024;
  std::string sizes;
  std::string shard_counts = "1";
  size_t pipeline = 1;
  double duration = 3.0;
  size_t idle = 10000;
  bool callgrind = false;
  bool keep_callgrind = false;
  size_t callgrind_requests = 20000;
  std::string csv;
  // Internal: run one server in this process.
  std::string serve;
  int ready_fd = -1;
  size_t shards = 1;

  bench_config() {
    opt_group{custom_options_, "global"}
        .add(servers, "servers",
             "comma list of: asio, shardwire, shardwire-cb (callback style)")
        .add(connections, "connections,c", "concurrent connections")
        .add(size, "size", "message size in bytes")
        .add(sizes, "sizes", "comma list of sizes to sweep (overrides --size)")
        .add(shard_counts, "shard-counts", "comma list of shard counts")
        .add(pipeline, "pipeline", "messages in flight per connection")
        .add(duration, "duration,d", "seconds of load per measurement")
        .add(idle, "idle", "idle connections for the memory figure (0: skip)")
        .add(callgrind, "callgrind", "count instructions per echo instead")
        .add(callgrind_requests, "callgrind-requests", "echoes per run (N)")
        .add(keep_callgrind, "keep-callgrind",
             "keep /tmp/echo_bench.callgrind.* for callgrind_annotate")
        .add(csv, "csv", "append result rows to this CSV file")
        .add(serve, "serve", "internal: run this server kind here")
        .add(ready_fd, "ready-fd", "internal: fd to report the port on")
        .add(shards, "shards", "internal: shard count for --serve");
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

void pin_to_cpu(int cpu) {
  if (std::thread::hardware_concurrency() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof(set), &set);
}

int serve(const std::string& kind, int ready_fd, size_t shards) {
  bench::raise_fd_limit();
  if (kind == "asio") return bench::run_asio_server(ready_fd, 0);
  if (kind == "shardwire")
    return bench::run_shardwire_server(ready_fd, shards, false);
  if (kind == "shardwire-cb")
    return bench::run_shardwire_server(ready_fd, shards, true);
  std::cerr << "unknown server kind: " << kind << '\n';
  return 2;
}

struct child {
  pid_t pid = -1;
  uint16_t port = 0;
};

// Starts a server process; under callgrind when `cg_out` is set.
child start_server(const std::string& kind, size_t shards,
                   const std::string& cg_out) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  auto pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (shards <= 1 || kind == "asio") pin_to_cpu(0);
    if (cg_out.empty()) ::_exit(serve(kind, fds[1], shards));
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
  if (::read(fds[0], &c.port, sizeof(c.port)) != sizeof(c.port))
    throw std::runtime_error("server " + kind + " did not start");
  ::close(fds[0]);
  return c;
}

int stop_server(child& c) {
  ::kill(c.pid, SIGTERM);
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  return status;
}

struct row {
  std::string server;
  size_t shards = 1;
  size_t size = 0;
  double req_per_s = 0;
  double mib_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double cpu_us_per_req = 0;
  double idle_bytes_per_conn = 0;
  double ir_per_echo = 0;
  uint64_t corrupt = 0;
  uint64_t failed = 0;
};

row measure(const bench_config& cfg, const std::string& kind, size_t shards,
            size_t size) {
  row r;
  r.server = kind;
  r.shards = shards;
  r.size = size;
  auto c = start_server(kind, shards, {});
  bench::load_options lo;
  lo.port = c.port;
  lo.connections = cfg.connections;
  lo.size = size;
  lo.pipeline = cfg.pipeline;
  // Warm-up: connections, pools and caches.
  lo.duration = std::min(0.5, cfg.duration);
  bench::run_load(lo);
  lo.duration = cfg.duration;
  auto cpu0 = bench::cpu_seconds(c.pid);
  auto res = bench::run_load(lo);
  auto cpu1 = bench::cpu_seconds(c.pid);
  r.req_per_s = static_cast<double>(res.requests) / res.seconds;
  r.mib_per_s = static_cast<double>(res.bytes) / res.seconds / 1048576.0;
  r.p50_us = res.percentile(50);
  r.p99_us = res.percentile(99);
  r.cpu_us_per_req =
      res.requests > 0 ? (cpu1 - cpu0) * 1e6 / static_cast<double>(res.requests)
                       : 0;
  r.corrupt = res.corrupt;
  r.failed = res.failed;
  if (cfg.idle > 0) {
    auto rss0 = bench::rss_bytes(c.pid);
    auto fds = bench::open_idle(c.port, cfg.idle);
    auto rss1 = bench::rss_bytes(c.pid);
    r.idle_bytes_per_conn =
        static_cast<double>(rss1 - rss0) / static_cast<double>(cfg.idle);
    for (int fd : fds)
      ::close(fd);
  }
  stop_server(c);
  return r;
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
                  size_t shards, size_t size) {
  uint64_t totals[2] = {0, 0};
  uint64_t counts[2] = {cfg.callgrind_requests, 2 * cfg.callgrind_requests};
  for (int i = 0; i < 2; ++i) {
    auto out = "/tmp/echo_bench.callgrind." + kind + "." + std::to_string(i);
    auto c = start_server(kind, shards, out);
    bench::load_options lo;
    lo.port = c.port;
    lo.connections = cfg.connections;
    lo.size = size;
    lo.pipeline = cfg.pipeline;
    lo.requests = counts[i];
    auto res = bench::run_load(lo);
    counts[i] = res.requests;
    stop_server(c);
    totals[i] = callgrind_total(out);
    if (!cfg.keep_callgrind) std::remove(out.c_str());
  }
  return static_cast<double>(totals[1] - totals[0]) /
         static_cast<double>(counts[1] - counts[0]);
}

void print_rows(const std::vector<row>& rows, bool callgrind) {
  std::map<size_t, const row*> base; // asio row per size
  for (auto& r : rows)
    if (r.server == "asio") base[r.size] = &r;
  auto ratio = [](double x, double b) {
    char buf[32];
    if (b <= 0) return std::string{"   -"};
    std::snprintf(buf, sizeof(buf), "%.2f", x / b);
    return std::string{buf};
  };
  if (callgrind) {
    std::printf("%-14s %6s %7s %14s %7s\n", "server", "shards", "size",
                "Ir/echo", "ratio");
    for (auto& r : rows) {
      auto* b = base.count(r.size) ? base[r.size] : nullptr;
      std::printf("%-14s %6zu %7zu %14.0f %7s\n", r.server.c_str(), r.shards,
                  r.size, r.ir_per_echo,
                  ratio(r.ir_per_echo, b ? b->ir_per_echo : 0).c_str());
    }
    return;
  }
  std::printf("%-14s %6s %7s %10s %9s %8s %8s %9s %6s %8s %6s %6s %9s %6s\n",
              "server", "shards", "size", "req/s", "MiB/s", "p50 us", "p99 us",
              "cpu us/rq", "ratio", "p99", "ratio", "thrpt", "idle B/c",
              "ratio");
  for (auto& r : rows) {
    auto* b = base.count(r.size) ? base[r.size] : nullptr;
    std::printf(
        "%-14s %6zu %7zu %10.0f %9.1f %8.1f %8.1f %9.2f %6s %8.1f "
        "%6s %6s %9.0f %6s\n",
        r.server.c_str(), r.shards, r.size, r.req_per_s, r.mib_per_s, r.p50_us,
        r.p99_us, r.cpu_us_per_req,
        ratio(r.cpu_us_per_req, b ? b->cpu_us_per_req : 0).c_str(), r.p99_us,
        ratio(r.p99_us, b ? b->p99_us : 0).c_str(),
        ratio(r.req_per_s, b ? b->req_per_s : 0).c_str(), r.idle_bytes_per_conn,
        ratio(r.idle_bytes_per_conn, b ? b->idle_bytes_per_conn : 0).c_str());
    if (r.corrupt != 0 || r.failed != 0)
      std::printf("  !! %s: %llu corrupt bytes, %llu failed connections\n",
                  r.server.c_str(), static_cast<unsigned long long>(r.corrupt),
                  static_cast<unsigned long long>(r.failed));
  }
}

} // namespace

int main(int argc, char** argv) {
  bench_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "error: " << caf::to_string(err) << '\n';
    return 1;
  }
  if (cfg.cli_helptext_printed) return 0;
  if (!cfg.serve.empty()) return serve(cfg.serve, cfg.ready_fd, cfg.shards);
  bench::raise_fd_limit();
  pin_to_cpu(1);
  std::vector<size_t> sizes;
  for (auto& s : split(cfg.sizes))
    sizes.push_back(std::stoul(s));
  if (sizes.empty()) sizes.push_back(cfg.size);
  std::vector<size_t> shard_counts;
  for (auto& s : split(cfg.shard_counts))
    shard_counts.push_back(std::stoul(s));
  auto kinds = split(cfg.servers);
  std::vector<row> rows;
  bool ok = true;
  for (auto size : sizes) {
    for (auto& kind : kinds) {
      auto counts = kind == "asio" ? std::vector<size_t>{1} : shard_counts;
      for (auto shards : counts) {
        std::cerr << "measuring " << kind << " shards=" << shards
                  << " size=" << size << " ...\n";
        row r;
        if (cfg.callgrind) {
          r.server = kind;
          r.shards = shards;
          r.size = size;
          r.ir_per_echo = measure_ir(cfg, kind, shards, size);
        } else {
          r = measure(cfg, kind, shards, size);
        }
        ok = ok && r.corrupt == 0 && r.failed == 0;
        rows.push_back(r);
      }
    }
  }
  std::printf("\n%zu connections, pipeline %zu, %.1f s per point%s\n",
              cfg.connections, cfg.pipeline, cfg.duration,
              cfg.callgrind ? ", callgrind" : "");
  print_rows(rows, cfg.callgrind);
  if (!cfg.csv.empty()) {
    std::ofstream out(cfg.csv, std::ios::app);
    for (auto& r : rows)
      out << r.server << ',' << r.shards << ',' << r.size << ',' << r.req_per_s
          << ',' << r.mib_per_s << ',' << r.p50_us << ',' << r.p99_us << ','
          << r.cpu_us_per_req << ',' << r.idle_bytes_per_conn << ','
          << r.ir_per_echo << '\n';
  }
  return ok ? 0 : 1;
}
