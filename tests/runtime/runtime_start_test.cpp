// runtime/runtime.hpp: a runtime that cannot start all its shards fails
// with an error naming the shard, and leaves nothing running behind it.
#include "runtime/runtime.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <chrono>
#include <string>
#include <sys/resource.h>
#include <system_error>
#include <thread>

using namespace shardwire;

namespace {

// Entries in a /proc/self directory (fd, task), "." and ".." included.
size_t entries(const char* dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir)) {
    while (::readdir(d) != nullptr)
      ++n;
    ::closedir(d);
  }
  return n;
}

size_t open_fds() {
  return entries("/proc/self/fd");
}

size_t thread_count() {
  return entries("/proc/self/task");
}

// Lowers the soft open-file limit for the life of the object.
class fd_limit {
public:
  explicit fd_limit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit rl = saved_;
    rl.rlim_cur = soft;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  ~fd_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
  rlimit saved_{};
};

} // namespace

TEST_CASE("a runtime whose shards run out of descriptors fails cleanly") {
  runtime_config cfg;
  cfg.shards = 8;
  // CAF's actor system takes a few descriptors of its own; the room left
  // is enough for some shards but not for eight.
  // ThreadSanitizer starts a background thread of its own at the process's
  // first pthread_create and keeps it; start that first one here, so the
  // count below sees only what the runtime leaves behind.
  std::thread([] {}).join();
  auto fds_before = open_fds();
  auto threads_before = thread_count();
  std::string what;
  {
    fd_limit limit{static_cast<rlim_t>(fds_before + 12)};
    try {
      runtime rt{cfg};
      FAIL("eight shards started with 12 spare descriptors");
    } catch (const std::system_error& e) {
      what = e.what();
      CHECK(e.code().value() == EMFILE);
    }
  }
  INFO(what);
  CHECK(what.find("cannot start shard") != std::string::npos);
  CHECK(what.find(" of 8") != std::string::npos);
  // Every descriptor and shard thread of the failed start is gone (CAF's
  // own threads are stopped with its actor system).
  CHECK(open_fds() == fds_before);
  // A joined thread can stay in /proc's count for a moment: the kernel
  // wakes the joiner before it releases the task. So the count must come
  // back within a bound rather than at once.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (thread_count() != threads_before
         && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  CHECK(thread_count() == threads_before);
}

TEST_CASE("the same configuration starts once descriptors are available") {
  runtime_config cfg;
  cfg.shards = 8;
  runtime rt{cfg};
  CHECK(rt.shard_count() == 8);
}
