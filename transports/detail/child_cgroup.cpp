#include "transports/detail/child_cgroup.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace shardwire::detail {

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path};
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Writes `text` in one write(2): cgroup files take one value per write.
int write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n;
  do {
    n = ::write(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

bool has_word(const std::string& words, const std::string& word) {
  std::istringstream in{words};
  std::string w;
  while (in >> w)
    if (w == word) return true;
  return false;
}

cgroup_place find_place() {
  auto self = read_file("/proc/self/cgroup");
  if (!self) return {{}, "/proc/self/cgroup cannot be read"};
  std::string rel;
  bool found = false;
  std::istringstream lines{*self};
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("0::", 0) == 0) {
      rel = line.substr(3);
      found = true;
    }
  if (!found) return {{}, "the program is in no cgroup v2 hierarchy"};
  auto info = read_file("/proc/self/mountinfo");
  if (!info) return {{}, "/proc/self/mountinfo cannot be read"};
  std::istringstream mounts{*info};
  for (std::string line; std::getline(mounts, line);) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail{line.substr(dash + 3)};
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head{line.substr(0, dash)};
    std::string id, parent, dev, root, point;
    head >> id >> parent >> dev >> root >> point;
    // Inside a cgroup namespace the mount's root is a prefix of the path.
    std::string path = rel;
    if (root != "/" && path.rfind(root, 0) == 0)
      path = path.substr(root.size());
    std::string dir = point + (path == "/" ? "" : path);
    if (::access(dir.c_str(), W_OK) != 0 ||
        ::access((dir + "/cgroup.procs").c_str(), W_OK) != 0)
      return {{},
              "the program's cgroup " + dir +
                  " is not writable (not delegated to it)"};
    return {dir, {}};
  }
  return {{}, "no cgroup2 file system is mounted"};
}

std::mutex place_mtx;
std::optional<cgroup_place> place;
std::atomic<uint64_t> next_index{0};

// Directories whose processes were still exiting when they were released:
// removed by later calls, or by the orphan guard's sweep at exit.
std::mutex pending_mtx;
std::vector<std::string> pending;

void retry_pending() {
  std::lock_guard<std::mutex> guard{pending_mtx};
  std::vector<std::string> busy;
  for (auto& dir : pending)
    if (::rmdir(dir.c_str()) != 0 && errno == EBUSY) busy.push_back(dir);
  pending = std::move(busy);
}

// Makes `controller` available to the child cgroups; "" or the problem.
caf::error enable_controller(const std::string& base,
                             const std::string& controller,
                             const std::string& field,
                             const std::string& context) {
  auto enabled = read_file(base + "/cgroup.subtree_control");
  if (enabled && has_word(*enabled, controller)) return {};
  auto offered = read_file(base + "/cgroup.controllers").value_or("");
  if (!has_word(offered, controller)) {
    while (!offered.empty() && offered.back() == '\n')
      offered.pop_back();
    return make_error(sw_errc::not_supported,
                      context + ": child_limits.cgroup." + field + ": the " +
                          controller + " controller is not offered in " + base +
                          " (cgroup.controllers: " +
                          (offered.empty() ? "none" : offered) + ")");
  }
  if (int err = write_file(base + "/cgroup.subtree_control", "+" + controller))
    return make_errno_error(
        err, context + ": child_limits.cgroup." + field + ": enabling the " +
                 controller + " controller in " + base +
                 "/cgroup.subtree_control" +
                 (err == EBUSY ? " (the program's own cgroup holds processes: "
                                 "run it in a leaf cgroup of its own, e.g. "
                                 "systemd's DelegateSubgroup=)"
                               : ""));
  return {};
}

} // namespace

const cgroup_place& cgroup_base() {
  std::lock_guard<std::mutex> guard{place_mtx};
  if (!place) place = find_place();
  return *place;
}

void override_cgroup_base(cgroup_place p) {
  std::lock_guard<std::mutex> guard{place_mtx};
  place = std::move(p);
}

std::string child_cgroup_prefix(pid_t program) {
  return "shardwire-" + std::to_string(program) + "-";
}

caf::expected<std::unique_ptr<child_cgroup_dir>>
child_cgroup_dir::create(const child_cgroup& opts, const std::string& context) {
  auto bad = [&](std::string what) {
    return make_error(sw_errc::invalid_argument,
                      context + ": child_limits.cgroup." + what);
  };
  if (opts.pids_max && *opts.pids_max == 0)
    return bad("pids_max: 0 would forbid the child itself");
  if (opts.cpu_max && !(std::isfinite(*opts.cpu_max) && *opts.cpu_max >= 0.01))
    return bad("cpu_max: " + std::to_string(*opts.cpu_max) +
               " is below 0.01 CPU (the kernel's least quota is 1 ms)");
  if (opts.cpu_max && *opts.cpu_max > 1e6)
    return bad("cpu_max: " + std::to_string(*opts.cpu_max) + " is too large");
  const auto base = cgroup_base();
  if (!base.ok()) {
    if (opts.any_limit())
      return make_error(sw_errc::not_supported,
                        context +
                            ": child_limits.cgroup: its limits need a "
                            "cgroup, and " +
                            base.why_not);
    static std::once_flag told;
    std::call_once(told, [&] {
      log::warning("child cgroups unavailable (", base.why_not,
                   "): children are killed by process group only");
    });
    return std::unique_ptr<child_cgroup_dir>{};
  }
  retry_pending();
  struct wanted {
    bool on;
    const char* controller;
    const char* field;
  };
  for (auto w : {wanted{opts.memory_max.has_value(), "memory", "memory_max"},
                 wanted{opts.pids_max.has_value(), "pids", "pids_max"},
                 wanted{opts.cpu_max.has_value(), "cpu", "cpu_max"}})
    if (w.on)
      if (auto err =
              enable_controller(base.dir, w.controller, w.field, context))
        return err;
  auto path = base.dir + "/" + child_cgroup_prefix(::getpid()) +
              std::to_string(next_index++);
  if (::mkdir(path.c_str(), 0755) != 0)
    return make_errno_error(errno,
                            context + ": child_limits.cgroup: mkdir " + path);
  std::unique_ptr<child_cgroup_dir> dir{new child_cgroup_dir(path)};
  auto set = [&](const char* file, const char* field,
                 const std::string& value) -> caf::error {
    if (int err = write_file(path + "/" + file, value))
      return make_errno_error(err, context + ": child_limits.cgroup." + field +
                                       ": writing " + value + " to " + path +
                                       "/" + file);
    return {};
  };
  if (opts.memory_max)
    if (auto err =
            set("memory.max", "memory_max", std::to_string(*opts.memory_max)))
      return err;
  if (opts.pids_max)
    if (auto err = set("pids.max", "pids_max", std::to_string(*opts.pids_max)))
      return err;
  if (opts.cpu_max) {
    constexpr uint64_t period_us = 100000;
    auto quota = static_cast<uint64_t>(std::llround(*opts.cpu_max * period_us));
    if (auto err = set("cpu.max", "cpu_max",
                       std::to_string(quota) + " " + std::to_string(period_us)))
      return err;
  }
  dir->procs_fd_ =
      ::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (dir->procs_fd_ < 0)
    return make_errno_error(errno, context + ": child_limits.cgroup: open " +
                                       path + "/cgroup.procs");
  return dir;
}

child_cgroup_dir::~child_cgroup_dir() {
  release();
}

void child_cgroup_dir::close_procs() noexcept {
  if (procs_fd_ >= 0) ::close(procs_fd_);
  procs_fd_ = -1;
}

void child_cgroup_dir::kill_all() noexcept {
  int err = write_file(path_ + "/cgroup.kill", "1");
  if (err != ENOENT) return;
  // Before Linux 5.14: kill what cgroup.procs lists until it lists nothing
  // (a process forked meanwhile shows up in the next pass).
  for (int pass = 0; pass < 16; ++pass) {
    auto procs = read_file(path_ + "/cgroup.procs");
    if (!procs || procs->empty()) return;
    std::istringstream in{*procs};
    for (long pid; in >> pid;)
      ::kill(static_cast<pid_t>(pid), SIGKILL);
  }
}

uint64_t child_cgroup_dir::oom_kills() const noexcept {
  try {
    auto events = read_file(path_ + "/memory.events");
    if (!events) return 0;
    std::istringstream in{*events};
    std::string key;
    uint64_t value;
    while (in >> key >> value)
      if (key == "oom_kill") return value;
  } catch (...) {
  }
  return 0;
}

void child_cgroup_dir::release() noexcept {
  if (released_) return;
  released_ = true;
  close_procs();
  kill_all();
  if (::rmdir(path_.c_str()) == 0 || errno != EBUSY) return;
  try {
    std::lock_guard<std::mutex> guard{pending_mtx};
    pending.push_back(path_);
  } catch (...) {
    // left to the orphan guard's sweep at exit
  }
}

} // namespace shardwire::detail
