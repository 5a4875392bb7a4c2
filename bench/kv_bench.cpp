// Requests/s and latency through the kv_cluster front node
// (docs/distributed.md).
//
// For each storage-node count in --node-counts it starts that many
// `kv_cluster node` processes and one `kv_cluster front` on free loopback
// ports, waits until every node answers through the front, then runs
// --connections client threads for --seconds, each keeping --depth
// requests in flight (half GET, half SET over --keys keys), and prints one
// line: nodes, requests/s, p50 and p99 latency. Processes are stopped with
// SIGINT afterwards; Ctrl-C (or SIGTERM) kills them and ends the benchmark
// with exit code 1 (bench/stop_signal.hpp). Not run in CI.
//
//   kv_bench [--kv=PATH] [--node-counts=1,3] [--connections=8] [--depth=1]
//            [--seconds=3] [--keys=10000] [--front-shards=0]
#include "bench/option_checks.hpp"
#include "bench/stop_signal.hpp"
#include "runtime/config.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <random>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

struct bench_config : shardwire::runtime_config {
  std::string kv;
  std::string node_counts = "1,3";
  size_t connections = 8;
  size_t depth = 1;
  size_t seconds = 3;
  size_t keys = 10000;
  size_t front_shards = 0;

  bench_config() {
    opt_group{custom_options_, "global"}
        .add(kv, "kv", "path of kv_cluster (default: ../demos/kv_cluster)")
        .add(node_counts, "node-counts", "storage node counts to measure")
        .add(connections, "connections,c", "client connections (threads)")
        .add(depth, "depth,d", "requests in flight per connection")
        .add(seconds, "seconds", "measuring time per node count")
        .add(keys, "keys", "distinct keys")
        .add(front_shards, "front-shards",
             "shards of the front (0 = one per hardware thread)");
  }
};

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Called on the main thread while it is the only one (the client threads
// run in `measure` only), so the block defers a stop signal until the
// child is registered.
pid_t start(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  bench::stop_signal_block block;
  // The child gets the default dispositions back: ours are not inherited
  // across exec, but the blocked mask is.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  auto rc = posix_spawn(&pid, argv[0], nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return -1;
  bench::track_child(pid);
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGINT);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  bench::untrack_child(pid);
}

/// A line client: sends lines, reads reply lines.
struct client {
  int fd = -1;
  std::string in;

  bool send_all(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  bool read_line(std::string& line) {
    for (;;) {
      if (auto nl = in.find('\n'); nl != std::string::npos) {
        line = in.substr(0, nl);
        in.erase(0, nl + 1);
        return true;
      }
      char buf[65536];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<size_t>(n));
    }
  }
};

struct result {
  double rps = 0;
  double p50_us = 0;
  double p99_us = 0;
  size_t errors = 0;
};

bool wait_ready(uint16_t front_port, size_t nodes) {
  auto until = clock_type::now() + std::chrono::seconds(10);
  while (clock_type::now() < until) {
    client c;
    c.fd = connect_to(front_port);
    if (c.fd >= 0) {
      // Enough distinct keys to hit every node; all must answer.
      bool all = true;
      std::string line;
      for (size_t i = 0; i < 16 * nodes && all; ++i) {
        if (!c.send_all("GET ready" + std::to_string(i) + "\n") ||
            !c.read_line(line) || line.rfind("ERR", 0) == 0)
          all = false;
      }
      ::close(c.fd);
      if (all) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

result measure(const bench_config& cfg, uint16_t front_port) {
  std::atomic<bool> stop_flag{false};
  std::vector<std::vector<uint32_t>> lat(cfg.connections);
  std::vector<size_t> errors(cfg.connections, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < cfg.connections; ++t) {
    threads.emplace_back([&, t] {
      client c;
      c.fd = connect_to(front_port);
      if (c.fd < 0) {
        ++errors[t];
        return;
      }
      std::mt19937 rng(static_cast<uint32_t>(t + 1));
      std::uniform_int_distribution<size_t> key(0, cfg.keys - 1);
      std::vector<clock_type::time_point> sent;
      std::string batch, line;
      auto one = [&] {
        auto k = "k" + std::to_string(key(rng));
        return (rng() & 1) ? "GET " + k + "\n"
                           : "SET " + k + " value-of-" + k + "\n";
      };
      for (size_t i = 0; i < cfg.depth; ++i) {
        batch += one();
        sent.push_back(clock_type::now());
      }
      if (!c.send_all(batch)) return;
      size_t head = 0;
      while (!stop_flag.load(std::memory_order_relaxed)) {
        if (!c.read_line(line)) {
          ++errors[t];
          break;
        }
        auto now = clock_type::now();
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      now - sent[head])
                      .count();
        lat[t].push_back(static_cast<uint32_t>(us));
        if (line.rfind("ERR", 0) == 0) ++errors[t];
        sent[head] = clock_type::now();
        head = (head + 1) % cfg.depth;
        if (!c.send_all(one())) break;
      }
      ::close(c.fd);
    });
  }
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::seconds(cfg.seconds));
  stop_flag = true;
  auto elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  for (auto& th : threads)
    th.join();
  std::vector<uint32_t> all;
  result r;
  for (size_t t = 0; t < cfg.connections; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    r.errors += errors[t];
  }
  if (all.empty()) return r;
  std::sort(all.begin(), all.end());
  r.rps = static_cast<double>(all.size()) / elapsed;
  r.p50_us = all[all.size() / 2];
  r.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

std::string default_kv_path() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "kv_cluster";
  std::string self{buf, static_cast<size_t>(n)};
  return self.substr(0, self.rfind('/')) + "/../demos/kv_cluster";
}

} // namespace

// Upper bounds: beyond them a run would exhaust threads, processes or
// memory long before it measured anything.
constexpr size_t max_node_count = 64;
constexpr size_t max_connections = 1024;
constexpr size_t max_depth = 10000;
constexpr size_t max_seconds = 86400;

int main(int argc, char** argv) {
  bench::stop_on_signal();
  bench_config cfg;
  std::vector<size_t> counts;
  auto valid = [&] {
    auto kv = cfg.kv.empty() ? default_kv_path() : cfg.kv;
    bool ok = shardwire::check_option(::access(kv.c_str(), X_OK) == 0, "kv",
                                      "'" + kv.substr(0, 200) +
                                          "' is not an executable file");
    ok &= bench::check_list(cfg.node_counts, 1, max_node_count, "node-counts",
                            &counts);
    ok &=
        bench::check_range(cfg.connections, 1, max_connections, "connections");
    ok &= bench::check_range(cfg.depth, 1, max_depth, "depth");
    ok &= bench::check_range(cfg.seconds, 1, max_seconds, "seconds");
    ok &= bench::check_range(cfg.keys, 1, SIZE_MAX, "keys");
    ok &= bench::check_range(cfg.front_shards, 0, shardwire::max_shards(),
                             "front-shards", " (0 = one per hardware thread)");
    // The measured runtimes are kv_cluster's processes.
    ok &= shardwire::refuse_metrics_option(cfg);
    return ok;
  };
  if (auto rc = shardwire::parse_args(cfg, argc, argv, valid)) return *rc;
  if (cfg.kv.empty()) cfg.kv = default_kv_path();
  std::cout << "# kv_bench: " << cfg.connections << " connections, depth "
            << cfg.depth << ", " << cfg.seconds << " s, " << cfg.keys
            << " keys, 50% GET / 50% SET, front shards " << cfg.front_shards
            << ", " << std::thread::hardware_concurrency()
            << " hardware threads\n";
  std::cout << "nodes,requests_per_s,p50_us,p99_us,errors\n";
  int rc = 0;
  for (auto n : counts) {
    std::vector<pid_t> pids;
    std::string nodes;
    for (size_t i = 0; i < n; ++i) {
      auto port = free_port();
      pids.push_back(start({cfg.kv, "node", "--port=" + std::to_string(port)}));
      nodes +=
          (i ? "," : "") + std::string{"127.0.0.1:"} + std::to_string(port);
    }
    auto fport = free_port();
    pids.push_back(start({cfg.kv, "front", "--port=" + std::to_string(fport),
                          "--nodes=" + nodes,
                          "--shards=" + std::to_string(cfg.front_shards)}));
    if (std::count(pids.begin(), pids.end(), -1) > 0 || !wait_ready(fport, n)) {
      std::cerr << "error: cluster with " << n << " node(s) did not start ("
                << cfg.kv << ")\n";
      rc = 1;
    } else {
      auto r = measure(cfg, fport);
      std::cout << n << "," << static_cast<uint64_t>(r.rps) << "," << r.p50_us
                << "," << r.p99_us << "," << r.errors << std::endl;
    }
    for (auto it = pids.rbegin(); it != pids.rend(); ++it)
      if (*it > 0) stop(*it);
  }
  return rc;
}
