#include "bench/spawn_measure.hpp"

#include "bench/stop_signal.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/child_cgroup.hpp"
#include "transports/detail/orphan_guard.hpp"
#include "transports/subprocess.hpp"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace bench {

namespace {

using namespace shardwire;
using clock_type = std::chrono::steady_clock;

// -- baseline: posix_spawn + waitpid ------------------------------------------

struct plain_child {
  pid_t pid;
  int out;
  int err;
  int in;
};

plain_child plain_spawn(const std::string& program) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
      ::pipe2(err, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "error: pipe2: %s\n", std::strerror(errno));
    std::_Exit(1);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
  pid_t pid;
  // Exit at once on failure: the runtime's threads are running, and
  // std::exit would destroy statics under them.
  if (auto rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv, environ);
      rc != 0) {
    std::fprintf(stderr, "error: cannot run '%s': %s\n", program.c_str(),
                 std::strerror(rc));
    std::_Exit(1);
  }
  bench::track_child(pid);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  return {pid, out[0], err[0], in[1]};
}

void plain_finish(const plain_child& c) {
  char buf[4096];
  for (int fd : {c.out, c.err}) {
    while (::read(fd, buf, sizeof(buf)) > 0) {
    }
    ::close(fd);
  }
  ::close(c.in);
  int st;
  while (::waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
  }
  bench::untrack_child(c.pid);
}

// -- shardwire ----------------------------------------------------------------

struct gate {
  std::mutex mtx;
  std::condition_variable cv;
  size_t running = 0;
  size_t failed = 0;
};

subprocess_protocol_actor::behavior_type
counting(subprocess_protocol_actor::pointer self, std::shared_ptr<gate> g) {
  return {
      [](subprocess_connected&) {},
      [](pipe_data&) {},
      [](pipe_lost&) {},
      [](exited&) {},
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self, g](lost&) {
        {
          std::lock_guard<std::mutex> guard{g->mtx};
          --g->running;
        }
        g->cv.notify_one();
        self->quit();
      },
  };
}

} // namespace

bool runnable(const std::string& program) {
  if (program.empty()) return false;
  if (program.find('/') != std::string::npos)
    return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  for (;;) {
    auto end = dirs.find(':', start);
    auto dir = dirs.substr(start, end - start);
    auto file = (dir.empty() ? std::string{"."} : dir) + "/" + program;
    if (::access(file.c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) return false;
    start = end + 1;
  }
}

// The kernel lists each thread's children, zombies included.
bool only_guard_left() {
  auto guard = shardwire::detail::orphan_guard_pid();
  auto* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return false;
  bool only = true;
  while (auto* t = ::readdir(tasks)) {
    if (t->d_name[0] == '.') continue;
    std::string path =
        std::string{"/proc/self/task/"} + t->d_name + "/children";
    if (auto* f = std::fopen(path.c_str(), "r")) {
      long pid;
      while (std::fscanf(f, "%ld", &pid) == 1)
        if (pid != guard) only = false;
      std::fclose(f);
    }
  }
  ::closedir(tasks);
  return only;
}

size_t open_fds() {
  size_t n = 0;
  if (auto* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n - 1; // the directory's own fd
}

double spawn_plain_rate(const std::string& program, size_t count,
                        size_t inflight) {
  auto start = clock_type::now();
  std::deque<plain_child> running;
  for (size_t i = 0; i < count; ++i) {
    if (running.size() >= inflight) {
      plain_finish(running.front());
      running.pop_front();
    }
    running.push_back(plain_spawn(program));
  }
  while (!running.empty()) {
    plain_finish(running.front());
    running.pop_front();
  }
  std::chrono::duration<double> secs = clock_type::now() - start;
  return static_cast<double>(count) / secs.count();
}

namespace {

double shardwire_rate_with(shardwire::runtime& rt, const std::string& program,
                           size_t count, size_t inflight, size_t* failed,
                           const subprocess_options& opts) {
  auto g = std::make_shared<gate>();
  auto start = clock_type::now();
  for (size_t i = 0; i < count; ++i) {
    {
      std::unique_lock<std::mutex> lock{g->mtx};
      g->cv.wait(lock, [&] { return g->running < inflight; });
      ++g->running;
    }
    async_subprocess_exec(rt, {program}, subprocess_protocol_fun(counting, g),
                          opts, [g](caf::expected<subprocess> sp) {
                            if (sp) return;
                            std::lock_guard<std::mutex> guard{g->mtx};
                            ++g->failed;
                            --g->running;
                            g->cv.notify_one();
                          });
  }
  std::unique_lock<std::mutex> lock{g->mtx};
  g->cv.wait(lock, [&] { return g->running == 0; });
  std::chrono::duration<double> secs = clock_type::now() - start;
  if (failed != nullptr) *failed += g->failed;
  return static_cast<double>(count) / secs.count();
}

} // namespace

double spawn_shardwire_rate(shardwire::runtime& rt, const std::string& program,
                            size_t count, size_t inflight, size_t* failed) {
  return shardwire_rate_with(rt, program, count, inflight, failed, {});
}

std::vector<option_cost> measure_option_costs(shardwire::runtime& rt,
                                              const std::string& program,
                                              size_t count, size_t inflight) {
  std::vector<std::pair<std::string, subprocess_options>> cases;
  cases.emplace_back("no options (posix_spawn)", subprocess_options{});
  subprocess_options env;
  env.env_merge = {"SHARDWIRE_BENCH=1"};
  cases.emplace_back("env_merge, 1 entry", env);
  subprocess_options umask;
  umask.limits.umask = 022;
  cases.emplace_back("limits: umask (fork+exec)", umask);
  subprocess_options limits;
  limits.limits.open_files = 1024;
  limits.limits.core_size = 0;
  limits.limits.nice = 5;
  cases.emplace_back("limits: 2 rlimits + nice", limits);
  if (::geteuid() == 0) {
    subprocess_options user;
    user.limits.user = "nobody";
    cases.emplace_back("limits: user=nobody", user);
  }
  // Where the program may make cgroups (otherwise the row would measure
  // the fallback, which is the fork path alone).
  if (shardwire::detail::cgroup_base().ok()) {
    subprocess_options cg;
    cg.limits.cgroup = shardwire::child_cgroup{};
    cases.emplace_back("cgroup per child", cg);
  }
  subprocess_options pty;
  pty.pty = shardwire::pty_options{};
  cases.emplace_back("pty", pty);
  std::vector<option_cost> out;
  for (auto& [name, opts] : cases) {
    option_cost c;
    c.option = name;
    c.per_s =
        shardwire_rate_with(rt, program, count, inflight, &c.failed, opts);
    out.push_back(std::move(c));
  }
  return out;
}

void print_option_costs(const std::vector<option_cost>& rows, size_t inflight) {
  std::printf("%-10s %-28s %12s %8s\n", "in flight", "option", "processes/s",
              "ratio");
  for (auto& r : rows) {
    std::printf("%-10zu %-28s %12.0f %8.2f\n", inflight, r.option.c_str(),
                r.per_s, rows[0].per_s > 0 ? r.per_s / rows[0].per_s : 0.0);
    if (r.failed > 0) std::printf("  !! %zu spawns failed\n", r.failed);
  }
}

std::vector<spawn_row> measure_spawn(shardwire::runtime& rt,
                                     const std::string& program, size_t count,
                                     const std::vector<size_t>& inflights) {
  std::vector<spawn_row> rows;
  for (auto inflight : inflights) {
    spawn_row r;
    r.inflight = inflight;
    r.plain_per_s = spawn_plain_rate(program, count, inflight);
    r.shardwire_per_s =
        spawn_shardwire_rate(rt, program, count, inflight, &r.failed);
    rows.push_back(r);
  }
  return rows;
}

void print_spawn(const std::vector<spawn_row>& rows) {
  std::printf("%-10s %-28s %12s %8s\n", "in flight", "server", "processes/s",
              "ratio");
  for (auto& r : rows) {
    std::printf("%-10zu %-28s %12.0f %8.2f\n", r.inflight,
                "posix_spawn+waitpid loop", r.plain_per_s, 1.0);
    std::printf("%-10zu %-28s %12.0f %8.2f\n", r.inflight,
                "shardwire subprocess_exec", r.shardwire_per_s,
                r.plain_per_s > 0 ? r.shardwire_per_s / r.plain_per_s : 0.0);
    if (r.failed > 0) std::printf("  !! %zu spawns failed\n", r.failed);
  }
}

churn_result spawn_churn(shardwire::runtime& rt, const std::string& program,
                         size_t children, size_t inflight) {
  churn_result r;
  r.children = children;
  r.fds_before = open_fds();
  r.per_s = spawn_shardwire_rate(rt, program, children, inflight, &r.failed);
  // The last `lost` can reach the protocol (on the fast path) before the
  // last pipe transport closed its descriptor in its on_exit: give the
  // shard a moment to finish, then count. A leak stays above the baseline.
  auto settle_until =
      std::chrono::steady_clock::now() + std::chrono::seconds(2);
  r.fds_after = open_fds();
  while (r.fds_after > r.fds_before &&
         std::chrono::steady_clock::now() < settle_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    r.fds_after = open_fds();
  }
  // Every child was reaped by its transport: no child is left, running or
  // unreaped, but the orphan guard (it lives as long as the program).
  r.no_children = only_guard_left();
  return r;
}

void print_churn(const churn_result& r) {
  std::printf("churn: %zu children at %.0f/s; descriptors before %zu, "
              "after %zu (%s); children left: %s%s\n",
              r.children, r.per_s, r.fds_before, r.fds_after,
              r.fds_after <= r.fds_before ? "no leak" : "LEAK",
              r.no_children ? "none" : "SOME",
              r.failed > 0 ? "; SOME SPAWNS FAILED" : "");
}

} // namespace bench
