#include "transports/detail/child_process.hpp"

#include "actors/errors.hpp"
#include "transports/detail/fork_exec.hpp"
#include "transports/detail/orphan_guard.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

extern char** environ;

namespace shardwire::detail {

namespace {

// Closes every descriptor it holds unless released.
struct fd_guard {
  std::vector<int> fds;
  ~fd_guard() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

// posix_spawn's C objects, destroyed on every path.
struct spawn_objects {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_objects() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~spawn_objects() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// A pseudo-terminal pair; both ends close-on-exec (the child gets the slave
// through its file actions only).
struct terminal {
  struct fd_owner {
    int fd = -1;
    fd_owner() = default;
    fd_owner(fd_owner&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    fd_owner& operator=(fd_owner&& o) noexcept {
      std::swap(fd, o.fd);
      return *this;
    }
    ~fd_owner() {
      if (fd >= 0) ::close(fd);
    }
    int get() const noexcept { return fd; }
    int release() noexcept { return std::exchange(fd, -1); }
  };
  fd_owner master;
  fd_owner slave;
  std::string slave_path;
};

caf::expected<terminal> open_terminal(const pty_options& size) {
  terminal t;
  t.master.fd = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (t.master.fd < 0) return make_errno_error(errno, "pty: posix_openpt");
  if (::grantpt(t.master.fd) != 0 || ::unlockpt(t.master.fd) != 0)
    return make_errno_error(errno, "pty: unlockpt");
  char name[128];
  if (int err = ::ptsname_r(t.master.fd, name, sizeof name))
    return make_errno_error(err, "pty: ptsname");
  t.slave_path = name;
  struct winsize ws = {};
  ws.ws_row = size.rows;
  ws.ws_col = size.cols;
  if (::ioctl(t.master.fd, TIOCSWINSZ, &ws) != 0)
    return make_errno_error(errno, "pty: TIOCSWINSZ");
  // Held open by the parent until the child has its own: a child that
  // exits at once must not leave the master without a slave before the
  // fork path's copies are made.
  t.slave.fd = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (t.slave.fd < 0)
    return make_errno_error(errno, std::string{"pty: open "} + name);
  return t;
}

std::vector<char*> c_strings(const std::vector<std::string>& xs) {
  std::vector<char*> out;
  out.reserve(xs.size() + 1);
  for (auto& x : xs)
    out.push_back(const_cast<char*>(x.c_str()));
  out.push_back(nullptr);
  return out;
}

} // namespace

caf::expected<spawned_child> spawn_child(const child_request& req) {
  if (req.argv.empty() || req.argv[0].empty())
    return make_error(sw_errc::invalid_argument, "empty argv");
  if (req.in == child_stream::merge || req.out == child_stream::merge)
    return make_error(sw_errc::invalid_argument,
                      "only stderr can be merged into stdout");
  caf::expected<resolved_limits> limits{resolved_limits{}};
  if (req.limits.any()) {
    limits = resolve_limits(req.limits);
    if (!limits) return std::move(limits.error());
  }
  if (req.pty && req.out != child_stream::pipe)
    return make_error(sw_errc::invalid_argument,
                      "pty: stdout must be on the terminal (stdio::pipe)");
  spawn_objects so;
  fork_exec_request forked; // the same plan, for the fork + exec path
  fd_guard child_ends;      // closed in the parent once the child has them
  spawned_child out;
  fd_guard parent_ends;
  std::optional<terminal> term;
  if (req.pty) {
    auto t = open_terminal(*req.pty);
    if (!t) return std::move(t.error());
    term = std::move(*t);
  }
  // The first stream on the terminal opens it by name (in the new session,
  // that makes it the controlling terminal); the others are copies of it.
  int first_on_terminal = -1;
  const child_stream modes[3] = {req.in, req.out, req.err};
  for (int i = 0; i < 3; ++i) {
    if (term && modes[i] == child_stream::pipe) {
      if (first_on_terminal < 0) {
        first_on_terminal = i;
        posix_spawn_file_actions_addopen(&so.actions, i,
                                         term->slave_path.c_str(), O_RDWR, 0);
      } else {
        posix_spawn_file_actions_adddup2(&so.actions, first_on_terminal, i);
      }
      forked.stdio[i] = {stdio_action::dup_fd, term->slave.get()};
      if (i == 1) {
        out.stdio[1] = term->master.release();
        parent_ends.fds.push_back(out.stdio[1]);
      }
      continue;
    }
    switch (modes[i]) {
    case child_stream::pipe: {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return make_errno_error(errno, "pipe2");
      // stdin: the child reads p[0]; stdout/stderr: the child writes p[1].
      int child_end = i == 0 ? p[0] : p[1];
      int parent_end = i == 0 ? p[1] : p[0];
      child_ends.fds.push_back(child_end);
      parent_ends.fds.push_back(parent_end);
      out.stdio[i] = parent_end;
      // dup2 clears close-on-exec on the child's copy.
      posix_spawn_file_actions_adddup2(&so.actions, child_end, i);
      forked.stdio[i] = {stdio_action::dup_fd, child_end};
      break;
    }
    case child_stream::inherit:
      break;
    case child_stream::devnull:
      posix_spawn_file_actions_addopen(&so.actions, i, "/dev/null",
                                       i == 0 ? O_RDONLY : O_WRONLY, 0);
      forked.stdio[i] = {stdio_action::devnull, -1};
      break;
    case child_stream::merge:
      posix_spawn_file_actions_adddup2(&so.actions, 1, 2);
      forked.stdio[i] = {stdio_action::merge, -1};
      break;
    }
  }
  if (req.cwd)
    posix_spawn_file_actions_addchdir_np(&so.actions, req.cwd->c_str());
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  // The child starts with no blocked signals and default dispositions (the
  // parent ignores SIGPIPE; a child must not inherit that).
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&so.attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&so.attr, &all);
  if (term) {
    // A session of its own (pgid = pid as well): its terminal's signals
    // (Ctrl-C, hang-up) reach it and nothing of ours.
    flags |= POSIX_SPAWN_SETSID;
    forked.controlling_terminal = term->slave.get();
    if (req.in == child_stream::pipe) {
      // stdin's transport writes to the master, stdout's reads it: one
      // descriptor each, so that closing one leaves the other working.
      out.stdio[0] = ::fcntl(out.stdio[1], F_DUPFD_CLOEXEC, 0);
      if (out.stdio[0] < 0) return make_errno_error(errno, "dup of pty master");
      parent_ends.fds.push_back(out.stdio[0]);
    }
  } else if (req.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&so.attr, 0);
  }
  posix_spawnattr_setflags(&so.attr, flags);
  // The guard exists before the first child does: a program killed right
  // after this spawn still has it.
  start_orphan_guard();
  auto argv = c_strings(req.argv);
  std::vector<char*> envp;
  if (req.env) envp = c_strings(*req.env);
  char** env = req.env ? envp.data() : environ;
  std::string ctx = "spawn " + req.argv[0];
  if (req.limits.any()) {
    if (req.limits.cgroup) {
      auto dir = child_cgroup_dir::create(*req.limits.cgroup, ctx);
      if (!dir) return std::move(dir.error());
      out.cgroup = std::move(*dir);
      if (out.cgroup) forked.cgroup_procs_fd = out.cgroup->procs_fd();
    }
    forked.argv = &req.argv;
    forked.envp = env;
    forked.cwd = req.cwd ? &*req.cwd : nullptr;
    forked.new_process_group = req.new_process_group;
    forked.limits = &*limits;
    // fork_exec registers the child with the orphan guard itself.
    auto pid = fork_exec(forked, ctx);
    if (out.cgroup) out.cgroup->close_procs();
    if (!pid) return std::move(pid.error()); // the cgroup goes with `out`
    out.pid = *pid;
    out.pgid = req.new_process_group || term ? *pid : ::getpgrp();
    parent_ends.fds.clear();
    return out;
  }
  pid_t pid = -1;
  int rc = req.argv[0].find('/') == std::string::npos
               ? ::posix_spawnp(&pid, argv[0], &so.actions, &so.attr,
                                argv.data(), env)
               : ::posix_spawn(&pid, argv[0], &so.actions, &so.attr,
                               argv.data(), env);
  if (rc != 0) {
    if (req.cwd) ctx += " (cwd " + *req.cwd + ")";
    return make_errno_error(rc, std::move(ctx));
  }
  out.pid = pid;
  bool own_group = req.new_process_group || term;
  out.pgid = own_group ? pid : ::getpgrp();
  // Killed with its group if the program dies before reaping it; a child in
  // the program's own group is killed alone.
  guard_child(pid, own_group ? pid : 0);
  parent_ends.fds.clear(); // handed to the caller
  return out;
}

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  errno = ENOSYS;
  return -1;
#endif
}

int pidfd_signal(int pidfd, int signo) noexcept {
#ifdef SYS_pidfd_send_signal
  return static_cast<int>(
      ::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

namespace {

// Waits (or, unless `block`, looks) for `pid`'s exit without reaping it;
// false while it runs. Between this and the reap the pid cannot be
// recycled, so the orphan guard forgets it in that window.
bool exited_unreaped(pid_t pid, bool block) noexcept {
  siginfo_t info;
  for (;;) {
    info.si_pid = 0;
    int rc = ::waitid(P_PID, static_cast<id_t>(pid), &info,
                      WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
    if (rc == 0) return info.si_pid != 0;
    if (errno != EINTR) return true; // ECHILD: the reap below reports it
  }
}

} // namespace

std::optional<int> try_reap(pid_t pid) noexcept {
  if (!exited_unreaped(pid, false)) return std::nullopt;
  forget_child(pid);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) return 255; // ECHILD: reaped by someone else (asyncio: 255)
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return std::nullopt; // stopped/continued: not an exit
}

int kill_and_reap(pid_t pid, pid_t pgid, bool group) noexcept {
  if (group && pgid > 0) ::kill(-pgid, SIGKILL);
  ::kill(pid, SIGKILL);
  exited_unreaped(pid, true);
  forget_child(pid);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return 255;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

} // namespace shardwire::detail
