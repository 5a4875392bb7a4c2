#include "bench/load_procs.hpp"

#include "bench/stop_signal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <sched.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

namespace {

// What a worker writes to its pipe before its latency samples.
struct wire_header {
  uint64_t requests;
  uint64_t bytes;
  double seconds;
  uint64_t corrupt;
  uint64_t failed;
  uint64_t samples;
};

bool write_all(int fd, const void* data, size_t len) {
  auto* p = static_cast<const char*>(data);
  while (len > 0) {
    auto n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, size_t len) {
  auto* p = static_cast<char*>(data);
  while (len > 0) {
    auto n = ::read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof(set), &set);
}

[[noreturn]] void worker(const load_options& opts, int go_fd, int out_fd) {
  // Wait until the parent has forked every worker and closes the go pipe.
  char c;
  while (::read(go_fd, &c, 1) < 0 && errno == EINTR) {
  }
  auto res = run_load(opts);
  wire_header h{res.requests, res.bytes,  res.seconds,
                res.corrupt,  res.failed, res.latencies_us.size()};
  bool ok = write_all(out_fd, &h, sizeof(h)) &&
            write_all(out_fd, res.latencies_us.data(),
                      res.latencies_us.size() * sizeof(double));
  ::_exit(ok ? 0 : 1);
}

} // namespace

load_result run_load_procs(const load_options& opts, size_t procs,
                           const std::vector<int>& cpus) {
  if (procs <= 1) return run_load(opts);
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  struct proc {
    pid_t pid = -1;
    int fd = -1;
    size_t connections = 0;
  };
  std::vector<proc> workers(procs);
  for (size_t i = 0; i < procs; ++i) {
    auto sub = opts;
    sub.connections =
        opts.connections / procs + (i < opts.connections % procs ? 1 : 0);
    if (opts.requests > 0)
      sub.requests =
          opts.requests / procs + (i < opts.requests % procs ? 1 : 0);
    workers[i].connections = sub.connections;
    if (sub.connections == 0) continue;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    auto parent = ::getpid();
    pid_t pid;
    {
      stop_signal_block block; // registered before a stop can come
      pid = ::fork();
      if (pid > 0) track_child(pid);
    }
    if (pid < 0) throw std::runtime_error("fork");
    if (pid == 0) {
      in_forked_child(parent);
      ::close(go[1]);
      ::close(out[0]);
      if (!cpus.empty()) pin_to(cpus[i % cpus.size()]);
      worker(sub, go[0], out[1]);
    }
    ::close(out[1]);
    workers[i].pid = pid;
    workers[i].fd = out[0];
  }
  ::close(go[0]);
  ::close(go[1]); // releases every worker at once
  load_result res;
  for (auto& w : workers) {
    if (w.pid < 0) continue;
    wire_header h{};
    std::vector<double> samples;
    bool ok = read_all(w.fd, &h, sizeof(h));
    if (ok) {
      samples.resize(h.samples);
      ok = read_all(w.fd, samples.data(), samples.size() * sizeof(double));
    }
    ::close(w.fd);
    int status = 0;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    untrack_child(w.pid);
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      res.failed += w.connections;
      continue;
    }
    res.requests += h.requests;
    res.bytes += h.bytes;
    res.seconds = std::max(res.seconds, h.seconds);
    res.corrupt += h.corrupt;
    res.failed += h.failed;
    res.latencies_us.insert(res.latencies_us.end(), samples.begin(),
                            samples.end());
  }
  return res;
}

} // namespace bench
