#include "transports/detail/fork_exec.hpp"

#include "actors/errors.hpp"
#include "transports/detail/orphan_guard.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shardwire::detail {

namespace {

// Which step failed in the child; the parent turns it into a message.
enum class step : int {
  cgroup,
  stdio,
  devnull,
  chdir,
  setpgid,
  setsid,
  setgroups,
  setgid,
  setrlimit,
  setpriority,
  setuid,
  exec,
};

struct child_report {
  step what;
  int err;
  int detail; // setrlimit: the resource
};

const char* rlimit_name(int resource) {
  switch (resource) {
  case RLIMIT_NOFILE:
    return "open_files (RLIMIT_NOFILE)";
  case RLIMIT_AS:
    return "address_space (RLIMIT_AS)";
  case RLIMIT_CPU:
    return "cpu_seconds (RLIMIT_CPU)";
  case RLIMIT_CORE:
    return "core_size (RLIMIT_CORE)";
  }
  return "a resource limit";
}

std::string describe_step(const child_report& r, const fork_exec_request& req) {
  switch (r.what) {
  case step::cgroup:
    return "entering its cgroup";
  case step::stdio:
    return "redirecting a standard stream";
  case step::devnull:
    return "opening /dev/null";
  case step::chdir:
    return "cwd " + *req.cwd;
  case step::setpgid:
    return "new process group";
  case step::setsid:
    return "new session with its terminal";
  case step::setgroups:
    return "supplementary groups";
  case step::setgid:
    return "gid " + std::to_string(req.limits->gid);
  case step::setrlimit:
    return rlimit_name(r.detail);
  case step::setpriority:
    return "nice " + std::to_string(req.limits->nice);
  case step::setuid:
    return "uid " + std::to_string(req.limits->uid);
  case step::exec:
    return {};
  }
  return {};
}

// In the child: reports the failed step and exits. Async-signal-safe.
[[noreturn]] void child_fail(int report_fd, step what, int err,
                             int detail = 0) {
  child_report r{what, err, detail};
  [[maybe_unused]] auto n = ::write(report_fd, &r, sizeof r);
  ::_exit(127);
}

// In the child, between fork and exec: only async-signal-safe calls, no
// heap, nothing that takes a lock the fork may have copied held.
[[noreturn]] void run_child(const fork_exec_request& req, char* const* argv,
                            int report_fd) {
  // Default dispositions first, then unblock (the parent forked with every
  // signal blocked, so none of its handlers can run here).
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (req.cgroup_procs_fd >= 0 && ::write(req.cgroup_procs_fd, "0", 1) != 1)
    child_fail(report_fd, step::cgroup, errno);
  for (int i = 0; i < 3; ++i) {
    const auto& a = req.stdio[i];
    switch (a.kind) {
    case stdio_action::keep:
      break;
    case stdio_action::dup_fd:
      // dup2 onto itself keeps close-on-exec set: clear it by hand.
      if (a.fd == i ? ::fcntl(i, F_SETFD, 0) != 0 : ::dup2(a.fd, i) < 0)
        child_fail(report_fd, step::stdio, errno);
      break;
    case stdio_action::devnull: {
      int fd = ::open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
      if (fd < 0) child_fail(report_fd, step::devnull, errno);
      if (fd != i) {
        if (::dup2(fd, i) < 0) child_fail(report_fd, step::stdio, errno);
        ::close(fd);
      }
      break;
    }
    case stdio_action::merge:
      if (::dup2(1, 2) < 0) child_fail(report_fd, step::stdio, errno);
      break;
    }
  }
  if (req.cwd && ::chdir(req.cwd->c_str()) != 0)
    child_fail(report_fd, step::chdir, errno);
  if (req.controlling_terminal >= 0) {
    if (::setsid() < 0 || ::ioctl(req.controlling_terminal, TIOCSCTTY, 0) != 0)
      child_fail(report_fd, step::setsid, errno);
  } else if (req.new_process_group && ::setpgid(0, 0) != 0) {
    child_fail(report_fd, step::setpgid, errno);
  }

  const auto& l = *req.limits;
  if (l.set_groups &&
      ::setgroups(l.groups.size(),
                  l.groups.empty() ? nullptr : l.groups.data()) != 0)
    child_fail(report_fd, step::setgroups, errno);
  if (l.set_gid && ::setgid(l.gid) != 0)
    child_fail(report_fd, step::setgid, errno);
  for (const auto& r : l.rlimits) {
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(r.value);
    if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) != 0)
      child_fail(report_fd, step::setrlimit, errno, r.resource);
  }
  if (l.set_nice && ::setpriority(PRIO_PROCESS, 0, l.nice) != 0)
    child_fail(report_fd, step::setpriority, errno);
  if (l.set_umask) ::umask(l.umask);
  if (l.set_uid && ::setuid(l.uid) != 0)
    child_fail(report_fd, step::setuid, errno);

  if ((*req.argv)[0].find('/') == std::string::npos)
    ::execvpe(argv[0], argv, req.envp);
  else
    ::execve(argv[0], argv, req.envp);
  child_fail(report_fd, step::exec, errno);
}

// Blocks every signal in this thread for the fork; restores on scope exit.
struct all_signals_blocked {
  sigset_t old;
  all_signals_blocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
  }
  ~all_signals_blocked() { ::pthread_sigmask(SIG_SETMASK, &old, nullptr); }
};

} // namespace

caf::expected<resolved_limits> resolve_limits(const child_limits& in) {
  resolved_limits out;
  auto bad = [](std::string what) {
    return make_error(sw_errc::invalid_argument, "child_limits." + what);
  };
  if (in.open_files) out.rlimits.push_back({RLIMIT_NOFILE, *in.open_files});
  if (in.address_space) out.rlimits.push_back({RLIMIT_AS, *in.address_space});
  if (in.cpu_seconds) out.rlimits.push_back({RLIMIT_CPU, *in.cpu_seconds});
  if (in.core_size) out.rlimits.push_back({RLIMIT_CORE, *in.core_size});
  if (in.user) {
    if (in.user->empty()) return bad("user: empty name");
    std::vector<char> buf(16384);
    struct passwd pw;
    struct passwd* found = nullptr;
    int rc =
        ::getpwnam_r(in.user->c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc != 0)
      return make_errno_error(rc, "child_limits.user: looking up '" + *in.user +
                                      "'");
    if (!found) return bad("user: no user named '" + *in.user + "'");
    out.set_uid = true;
    out.uid = pw.pw_uid;
    out.set_gid = true;
    out.gid = pw.pw_gid;
    int n = 32;
    std::vector<gid_t> groups(static_cast<size_t>(n));
    while (::getgrouplist(in.user->c_str(), pw.pw_gid, groups.data(), &n) < 0)
      groups.resize(static_cast<size_t>(n));
    groups.resize(static_cast<size_t>(n));
    out.set_groups = true;
    out.groups = std::move(groups);
  }
  if (in.uid) {
    out.set_uid = true;
    out.uid = *in.uid;
  }
  if (in.gid) {
    out.set_gid = true;
    out.gid = *in.gid;
  }
  if (in.groups) {
    out.set_groups = true;
    out.groups = *in.groups;
  }
  // Dropping the uid while keeping root's supplementary groups would leave
  // the child in group 0: a uid without groups drops them, as `su` does.
  // (Only root has groups to drop that way; anyone else may not setgroups.)
  if (out.set_uid && !out.set_groups && ::geteuid() == 0) {
    out.set_groups = true;
    if (out.set_gid) out.groups = {out.gid};
  }
  if (in.nice) {
    if (*in.nice < -20 || *in.nice > 19)
      return bad("nice: " + std::to_string(*in.nice) + " is outside -20..19");
    out.set_nice = true;
    out.nice = *in.nice;
  }
  if (in.umask) {
    if (*in.umask > 0777)
      return bad("umask: " + std::to_string(*in.umask) + " is above 0777");
    out.set_umask = true;
    out.umask = *in.umask;
  }
  return out;
}

caf::expected<pid_t> fork_exec(const fork_exec_request& req,
                               const std::string& context) {
  // Everything the child needs is built here: it must not allocate.
  std::vector<char*> argv;
  argv.reserve(req.argv->size() + 1);
  for (auto& a : *req.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return make_errno_error(errno, "pipe2");
  pid_t pid;
  {
    all_signals_blocked blocked;
    pid = ::fork();
    if (pid == 0) {
      ::close(report[0]);
      run_child(req, argv.data(), report[1]);
    }
  }
  int fork_errno = errno;
  ::close(report[1]);
  if (pid < 0) {
    ::close(report[0]);
    return make_errno_error(fork_errno, context + ": fork");
  }
  // Also from here, so that the group exists whichever side runs first (a
  // session leader makes its own, and setpgid would be refused).
  bool own_group = req.new_process_group || req.controlling_terminal >= 0;
  if (req.new_process_group && req.controlling_terminal < 0)
    ::setpgid(pid, pid);
  guard_child(pid, own_group ? pid : 0);
  // EOF on the report pipe: the child exec'd (close-on-exec closed it).
  child_report r{};
  size_t got = 0;
  while (got < sizeof r) {
    auto n =
        ::read(report[0], reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(report[0]);
  if (got < sizeof r) return pid;
  // The child failed before exec and exits 127: reap it now.
  forget_child(pid);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto what = describe_step(r, req);
  return make_errno_error(r.err,
                          what.empty() ? context : context + " (" + what + ")");
}

} // namespace shardwire::detail
