#include "transports/detail/orphan_guard.hpp"

#include "runtime/log.hpp"
#include "transports/detail/child_cgroup.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <initializer_list>
#include <mutex>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace shardwire::detail {

namespace {

// One record per event, written whole (8 bytes < PIPE_BUF: atomic, so shard
// threads write without a lock). pid > 0: a child, killed with group `pgid`
// where pgid > 0. pid < 0: forget -pid.
struct record {
  int32_t pid;
  int32_t pgid;
};

std::once_flag start_once;
std::atomic<int> write_fd{-1};
std::atomic<pid_t> guard_pid{-1};
std::atomic<bool> drop_reported{false};

// Filled before the guard is forked (it must not allocate): where the
// children's cgroups are, and the prefix of their names.
char cgroup_dir[4096];
char cgroup_prefix[64];

// -- the guard process --------------------------------------------------------
// Runs in a child forked from a multi-threaded program: only system calls,
// no allocation, no locks (another thread may have held them at the fork),
// and raw syscalls so that no sanitizer interceptor runs either.

long sys_read(int fd, void* buf, size_t n) {
  return ::syscall(SYS_read, fd, buf, n);
}

[[noreturn]] void sys_exit(int code) {
  ::syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

void close_all_but(int keep) {
#ifdef SYS_close_range
  if (keep > 0) ::syscall(SYS_close_range, 0u, unsigned(keep - 1), 0u);
  if (::syscall(SYS_close_range, unsigned(keep + 1), ~0u, 0u) == 0) return;
#endif
  for (int fd = 0; fd < 65536; ++fd)
    if (fd != keep) ::syscall(SYS_close, fd);
}

// The live children: an array grown with mmap (malloc is off limits here).
struct table {
  record* rows = nullptr;
  size_t size = 0;
  size_t cap = 0;

  bool grow() {
    size_t cap2 = cap == 0 ? 1024 : cap * 2;
    void* p = ::mmap(nullptr, cap2 * sizeof(record), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    auto* rows2 = static_cast<record*>(p);
    for (size_t i = 0; i < size; ++i)
      rows2[i] = rows[i];
    if (rows != nullptr) ::munmap(rows, cap * sizeof(record));
    rows = rows2;
    cap = cap2;
    return true;
  }

  void apply(const record& r) {
    if (r.pid > 0) {
      if (size == cap && !grow()) return;
      rows[size++] = r;
      return;
    }
    for (size_t i = 0; i < size; ++i)
      if (rows[i].pid == -r.pid) {
        rows[i] = rows[--size];
        return;
      }
  }

  void kill_all() const {
    for (size_t i = 0; i < size; ++i) {
      if (rows[i].pgid > 0) ::syscall(SYS_kill, -rows[i].pgid, SIGKILL);
      ::syscall(SYS_kill, rows[i].pid, SIGKILL);
    }
  }
};

bool starts_with(const char* s, const char* prefix) {
  for (; *prefix != '\0'; ++s, ++prefix)
    if (*s != *prefix) return false;
  return true;
}

// Appends `parts` to `out` (size `cap`); false if it does not fit.
bool join(char* out, size_t cap, std::initializer_list<const char*> parts) {
  size_t n = 0;
  for (const char* p : parts)
    for (; *p != '\0'; ++p) {
      if (n + 1 >= cap) return false;
      out[n++] = *p;
    }
  out[n] = '\0';
  return true;
}

// Calls fn(name) for each of the program's child cgroups; how many.
template <class F>
int for_each_cgroup(F fn) {
  int dir = static_cast<int>(
      ::syscall(SYS_openat, AT_FDCWD, cgroup_dir, O_RDONLY | O_DIRECTORY, 0));
  if (dir < 0) return 0;
  int count = 0;
  alignas(8) char buf[8192];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir, buf, sizeof(buf));
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name
      unsigned short reclen;
      std::memcpy(&reclen, buf + at + 16, sizeof(reclen));
      const char* name = buf + at + 19;
      if (starts_with(name, cgroup_prefix)) {
        fn(name);
        ++count;
      }
      at += reclen;
    }
  }
  ::syscall(SYS_close, dir);
  return count;
}

// SIGKILLs every pid listed (decimal, one per line) in the file at `path`.
// Raw syscalls only: the guard runs after the program is gone.
void kill_listed(const char* path) {
  int fd = static_cast<int>(
      ::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0));
  if (fd < 0) return;
  char buf[4096];
  long pid = 0;
  bool digits = false;
  for (;;) {
    long n = ::syscall(SYS_read, fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (long i = 0; i < n; ++i) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        pid = pid * 10 + (buf[i] - '0');
        digits = true;
      } else {
        if (digits && pid > 0) ::syscall(SYS_kill, pid, SIGKILL);
        pid = 0;
        digits = false;
      }
    }
  }
  if (digits && pid > 0) ::syscall(SYS_kill, pid, SIGKILL);
  ::syscall(SYS_close, fd);
}

// Kills everything in the program's child cgroups, then removes them once
// their processes are gone (within a second; the kernel needs the killed
// processes to exit first).
void sweep_cgroups() {
  if (cgroup_dir[0] == '\0') return;
  char path[4096 + 128];
  for_each_cgroup([&](const char* name) {
    if (!join(path, sizeof(path), {cgroup_dir, "/", name, "/cgroup.kill"}))
      return;
    int fd = static_cast<int>(
        ::syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0));
    if (fd >= 0) {
      ::syscall(SYS_write, fd, "1", 1);
      ::syscall(SYS_close, fd);
      return;
    }
    // Before Linux 5.14 there is no cgroup.kill: kill what cgroup.procs
    // lists (a child forked meanwhile is caught by its process group).
    if (join(path, sizeof(path), {cgroup_dir, "/", name, "/cgroup.procs"}))
      kill_listed(path);
  });
  for (int round = 0; round < 100; ++round) {
    int busy = for_each_cgroup([&](const char* name) {
      if (join(path, sizeof(path), {cgroup_dir, "/", name}))
        ::syscall(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR);
    });
    if (busy == 0) return;
    struct timespec pause = {0, 10 * 1000 * 1000};
    ::syscall(SYS_nanosleep, &pause, nullptr);
  }
}

[[noreturn]] void run_guard(int in) {
  // Its own process group: a Ctrl-C or a `kill -9 -PGID` aimed at the
  // program must not take the guard with it before it did its job.
  ::setpgid(0, 0);
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE})
    ::sigaction(sig, &ignore, nullptr);
  ::prctl(PR_SET_NAME, "shardwire-guard", 0, 0, 0);
  close_all_but(in);
  table live;
  // Records arrive whole but a read may end inside one: carry the rest.
  alignas(record) char buf[4096];
  size_t have = 0;
  for (;;) {
    long n = sys_read(in, buf + have, sizeof(buf) - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; // EOF: the program is gone
    have += static_cast<size_t>(n);
    size_t used = 0;
    for (; have - used >= sizeof(record); used += sizeof(record)) {
      record r;
      std::memcpy(&r, buf + used, sizeof(r));
      live.apply(r);
    }
    std::memmove(buf, buf + used, have - used);
    have -= used;
  }
  live.kill_all();
  sweep_cgroups();
  sys_exit(0);
}

// -- the program's side -------------------------------------------------------

void start_guard() {
  // Copied now: the guard cannot look them up (no allocation after fork).
  const auto& place = cgroup_base();
  if (place.ok() && place.dir.size() < sizeof(cgroup_dir)) {
    std::memcpy(cgroup_dir, place.dir.c_str(), place.dir.size() + 1);
    auto prefix = child_cgroup_prefix(::getpid());
    std::memcpy(cgroup_prefix, prefix.c_str(), prefix.size() + 1);
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    log::warning("orphan guard: pipe2 failed (", std::strerror(errno),
                 "): children will outlive a killed program");
    return;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    log::warning("orphan guard: fork failed (", std::strerror(errno),
                 "): children will outlive a killed program");
    ::close(p[0]);
    ::close(p[1]);
    return;
  }
  if (pid == 0) run_guard(p[0]);
  // The guard moves to its own group itself; doing it here as well means it
  // has left the program's group before any child exists (a group SIGKILL
  // right after the first spawn must not take the guard with it).
  ::setpgid(pid, pid);
  ::close(p[0]);
  // Registering must never block a shard thread.
  ::fcntl(p[1], F_SETFL, O_NONBLOCK);
  guard_pid.store(pid);
  write_fd.store(p[1]);
}

void send(const record& r) noexcept {
  int fd = write_fd.load();
  if (fd < 0) return;
  ssize_t n;
  do {
    n = ::write(fd, &r, sizeof(r));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(r))) return;
  if (!drop_reported.exchange(true))
    log::warning("orphan guard: cannot register child ", r.pid < 0 ? -r.pid : r.pid,
                 " (", n < 0 ? std::strerror(errno) : "short write",
                 "): it may outlive a killed program");
}

} // namespace

void start_orphan_guard() noexcept {
  try {
    std::call_once(start_once, start_guard);
  } catch (...) {
    // call_once throws only where threads are unavailable
  }
}

void guard_child(pid_t pid, pid_t pgid) noexcept {
  start_orphan_guard();
  send(record{static_cast<int32_t>(pid), static_cast<int32_t>(pgid)});
}

void forget_child(pid_t pid) noexcept {
  send(record{-static_cast<int32_t>(pid), 0});
}

pid_t orphan_guard_pid() noexcept {
  return guard_pid.load();
}

} // namespace shardwire::detail
