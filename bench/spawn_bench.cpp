// Spawn-and-reap benchmark (issue 5; not run in CI; figures in
// docs/subprocess.md):
// 1. processes/s for `true` with stdin/stdout/stderr as pipes, through
//    shardwire's subprocess transport and through a plain loop of
//    pipe2 + posix_spawn + read-to-EOF + waitpid in the same run, with 1 and
//    with --inflight children at a time;
// 2. churn: --churn children (default 1,000) through shardwire, then checks
//    that no descriptor leaked and no child (zombie or not) is left.
//
//   spawn_bench [--count=2000] [--inflight=16] [--churn=1000] [--shards=1]
#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/subprocess.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace shardwire;
using clock_type = std::chrono::steady_clock;

namespace {

struct bench_config : config {
  size_t count = 2000;
  size_t inflight = 16;
  size_t churn = 1000;
  std::string program = "true";
  bench_config() {
    opt_group{custom_options_, "global"}
        .add(count, "count,n", "processes per measurement")
        .add(inflight, "inflight,i", "children running at once")
        .add(churn, "churn", "children in the churn check (0: skip)")
        .add(program, "program", "what to run (no arguments)");
    shards = 1;
  }
};

size_t open_fds() {
  size_t n = 0;
  if (auto* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n - 1; // the directory's own fd
}

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
    std::perror("pipe2");
    std::exit(1);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
  pid_t pid;
  if (::posix_spawnp(&pid, argv[0], &fa, nullptr, argv, environ) != 0) {
    std::perror("posix_spawnp");
    std::exit(1);
  }
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
}

double run_plain(const std::string& program, size_t count, size_t inflight) {
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

// -- shardwire
// -----------------------------------------------------------------

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

double run_shardwire(runtime& rt, const std::string& program, size_t count,
                     size_t inflight) {
  auto g = std::make_shared<gate>();
  auto start = clock_type::now();
  for (size_t i = 0; i < count; ++i) {
    {
      std::unique_lock<std::mutex> lock{g->mtx};
      g->cv.wait(lock, [&] { return g->running < inflight; });
      ++g->running;
    }
    async_subprocess_exec(rt, {program}, subprocess_protocol_fun(counting, g),
                          {}, [g](caf::expected<subprocess> sp) {
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
  if (g->failed > 0) std::printf("  (%zu spawns failed)\n", g->failed);
  return static_cast<double>(count) / secs.count();
}

} // namespace

int main(int argc, char** argv) {
  bench_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  std::printf("spawn_bench: %zu x `%s` (stdin/stdout/stderr as pipes), "
              "%zu shard(s)\n\n",
              cfg.count, cfg.program.c_str(), rt.shard_count());
  std::printf("%-10s %-28s %12s %8s\n", "in flight", "server", "processes/s",
              "ratio");
  for (size_t inflight : {size_t{1}, cfg.inflight}) {
    auto base = run_plain(cfg.program, cfg.count, inflight);
    auto sw = run_shardwire(rt, cfg.program, cfg.count, inflight);
    std::printf("%-10zu %-28s %12.0f %8.2f\n", inflight,
                "posix_spawn+waitpid loop", base, 1.0);
    std::printf("%-10zu %-28s %12.0f %8.2f\n", inflight,
                "shardwire subprocess_exec", sw, sw / base);
  }
  int rc = 0;
  if (cfg.churn > 0) {
    auto fds_before = open_fds();
    auto rate = run_shardwire(rt, cfg.program, cfg.churn, cfg.inflight);
    auto fds_after = open_fds();
    // Every child was reaped by its transport: nothing is left to wait for.
    errno = 0;
    auto left = ::waitpid(-1, nullptr, WNOHANG);
    bool no_children = left < 0 && errno == ECHILD;
    std::printf("\nchurn: %zu children at %.0f/s; descriptors before %zu, "
                "after %zu (%s); children left: %s\n",
                cfg.churn, rate, fds_before, fds_after,
                fds_before == fds_after ? "no leak" : "LEAK",
                no_children ? "none" : "SOME");
    if (fds_before != fds_after || !no_children) rc = 1;
  }
  return rc;
}
