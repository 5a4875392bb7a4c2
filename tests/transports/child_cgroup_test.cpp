// One cgroup v2 per child (child_limits::cgroup, transports/child_limits.hpp):
// the child is in it from its start, a grandchild that left the process
// group dies with it, the directory goes, limits are written or refused by
// name, an OOM kill is reported as such. Where the program may not create
// cgroups the positive cases are skipped with the reason printed; the
// fallback is tested everywhere by pretending there is no cgroup.
#include "transports/detail/child_cgroup.hpp"
#include "transports/subprocess.hpp"

#include "tests/support/fixtures.hpp"

#include <csignal>
#include <fstream>
#include <future>
#include <poll.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

struct child_result {
  std::string out;
  int status = 0;
  bool oom = false;
};

class collector : public subprocess_protocol {
public:
  collector(std::shared_ptr<std::promise<child_result>> done,
            std::shared_ptr<std::promise<std::string>> first_lines)
      : done_(std::move(done)), first_(std::move(first_lines)) {}
  void pipe_data_received(int fd, const buffer& bytes) override {
    if (fd != 1) return;
    result_.out += bytes.str();
    // The first two lines (cgroup, grandchild pid) are all a test waits for.
    if (first_ &&
        std::count(result_.out.begin(), result_.out.end(), '\n') >= 2) {
      first_->set_value(result_.out);
      first_.reset();
    }
  }
  void process_exited(int rc) override {
    result_.status = rc;
    result_.oom = transport().oom_killed();
  }
  void connection_lost(const caf::error&) override {
    if (first_) first_->set_value(result_.out);
    done_->set_value(std::move(result_));
  }

private:
  std::shared_ptr<std::promise<child_result>> done_;
  std::shared_ptr<std::promise<std::string>> first_;
  child_result result_;
};

struct running {
  caf::expected<subprocess> sp{caf::error{}};
  std::future<child_result> done;
  std::future<std::string> first_lines;
};

running start(runtime& rt, const std::string& cmd, subprocess_options opts) {
  auto done = std::make_shared<std::promise<child_result>>();
  auto first = std::make_shared<std::promise<std::string>>();
  running r;
  r.done = done->get_future();
  r.first_lines = first->get_future();
  r.sp = subprocess_shell(rt, cmd,
                          make_subprocess_protocol<collector>(done, first),
                          std::move(opts));
  return r;
}

subprocess_options with_cgroup(child_cgroup cg = {}) {
  subprocess_options opts;
  opts.limits.cgroup = cg;
  return opts;
}

std::string read_all(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The child's cgroup directory from its "0::/..." line.
std::string cgroup_dir_of(const std::string& out) {
  std::istringstream in{out};
  std::string line;
  std::getline(in, line);
  REQUIRE(line.rfind("0::", 0) == 0);
  auto name = line.substr(line.rfind('/') + 1);
  return detail::cgroup_base().dir + "/" + name;
}

pid_t second_line_pid(const std::string& out) {
  std::istringstream in{out};
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  return static_cast<pid_t>(std::stol(line));
}

// Waits for any process (not only a child) to exit, through a pidfd.
bool exits_within(pid_t pid, std::chrono::milliseconds timeout) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH; // already gone
  struct pollfd p = {fd, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  ::close(fd);
  return n == 1;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Skips (with the reason printed) where no cgroup can be made here.
#define REQUIRE_CGROUPS()                                                      \
  do {                                                                         \
    if (!detail::cgroup_base().ok()) {                                         \
      WARN("SKIPPED: no child cgroups here: "                                  \
           << detail::cgroup_base().why_not);                                  \
      return;                                                                  \
    }                                                                          \
  } while (false)

bool controller_offered(const std::string& name) {
  std::istringstream in{
      read_all(detail::cgroup_base().dir + "/cgroup.controllers")};
  for (std::string w; in >> w;)
    if (w == name) return true;
  return false;
}

const char* in_cgroup_with_escaped_grandchild =
    "grep '^0::' /proc/self/cgroup; setsid sleep 30 >/dev/null & echo $!; "
    "wait";

} // namespace

TEST_CASE("cgroup: the child starts in a cgroup of its own") {
  REQUIRE_CGROUPS();
  runtime_fixture fx;
  auto r = start(*fx.rt, in_cgroup_with_escaped_grandchild, with_cgroup());
  REQUIRE(r.sp);
  REQUIRE(r.first_lines.wait_for(deadline) == std::future_status::ready);
  auto out = r.first_lines.get();
  INFO(out);
  auto dir = cgroup_dir_of(out);
  CHECK(dir.find(detail::child_cgroup_prefix(::getpid())) != std::string::npos);
  // Its grandchild, in another session, is in the same cgroup.
  auto grandchild = second_line_pid(out);
  CHECK(read_all("/proc/" + std::to_string(grandchild) + "/cgroup")
            .find(dir.substr(dir.rfind('/'))) != std::string::npos);
  caf::anon_send(r.sp->transport, shardwire::close{});
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
}

TEST_CASE("cgroup: closing the child kills a grandchild that left its group") {
  REQUIRE_CGROUPS();
  runtime_fixture fx;
  auto r = start(*fx.rt, in_cgroup_with_escaped_grandchild, with_cgroup());
  REQUIRE(r.sp);
  REQUIRE(r.first_lines.wait_for(deadline) == std::future_status::ready);
  auto out = r.first_lines.get();
  auto dir = cgroup_dir_of(out);
  auto grandchild = second_line_pid(out);
  REQUIRE(grandchild > 0);
  CHECK_FALSE(exits_within(grandchild, std::chrono::milliseconds(0)));
  caf::anon_send(r.sp->transport, shardwire::close{});
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  CHECK(r.done.get().status == -SIGKILL);
  CHECK(exits_within(grandchild, deadline));
  // The directory goes once its last process is gone: at release, or at
  // the next child's start (which retries what was still busy).
  auto next = start(*fx.rt, "true", with_cgroup());
  REQUIRE(next.sp);
  REQUIRE(next.done.wait_for(deadline) == std::future_status::ready);
  CHECK_FALSE(exists(dir));
}

TEST_CASE("cgroup: what the child leaves behind dies when it exits") {
  REQUIRE_CGROUPS();
  runtime_fixture fx;
  auto r = start(*fx.rt,
                 "grep '^0::' /proc/self/cgroup; "
                 "setsid sleep 30 >/dev/null & echo $!",
                 with_cgroup());
  REQUIRE(r.sp);
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  auto res = r.done.get();
  INFO(res.out);
  CHECK(res.status == 0);
  CHECK_FALSE(res.oom);
  CHECK(exits_within(second_line_pid(res.out), deadline));
}

TEST_CASE("cgroup: limits are written, or refused naming the field") {
  REQUIRE_CGROUPS();
  runtime_fixture fx;
  struct limit_case {
    const char* controller;
    const char* field;
    const char* file;
    child_cgroup cg;
    std::string want;
  };
  child_cgroup mem, pids, cpu;
  mem.memory_max = 64u << 20;
  pids.pids_max = 32;
  cpu.cpu_max = 0.5;
  for (auto& c :
       {limit_case{"memory", "memory_max", "memory.max", mem,
                   std::to_string(64u << 20)},
        limit_case{"pids", "pids_max", "pids.max", pids, "32"},
        limit_case{"cpu", "cpu_max", "cpu.max", cpu, "50000 100000"}}) {
    INFO(c.field);
    // The child reads its own cgroup's file: base + its cgroup's name.
    auto opts = with_cgroup(c.cg);
    opts.env_merge = {"CGBASE=" + detail::cgroup_base().dir};
    auto r = start(*fx.rt,
                   std::string{"d=$(sed -n 's/^0:://p' /proc/self/cgroup); "
                               "cat \"$CGBASE/${d##*/}/"} +
                       c.file + "\"",
                   opts);
    if (!controller_offered(c.controller)) {
      WARN("the " << c.controller << " controller is not offered in "
                  << detail::cgroup_base().dir << ": refusal checked only");
      REQUIRE_FALSE(r.sp);
      CHECK(is(r.sp.error(), sw_errc::not_supported));
      auto text = describe(r.sp.error());
      CHECK(text.find(c.field) != std::string::npos);
      CHECK(text.find(std::string{c.controller} + " controller") !=
            std::string::npos);
      continue;
    }
    REQUIRE(r.sp);
    REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
    auto res = r.done.get();
    CHECK(res.status == 0);
    CHECK(res.out == c.want + "\n");
  }
}

TEST_CASE("cgroup: a child over memory_max is reported as OOM-killed") {
  REQUIRE_CGROUPS();
  if (!controller_offered("memory")) {
    WARN("SKIPPED: the memory controller is not offered in "
         << detail::cgroup_base().dir);
    return;
  }
  runtime_fixture fx;
  child_cgroup cg;
  cg.memory_max = 16u << 20;
  auto opts = with_cgroup(cg);
  // 256 MiB touched page by page: far above the limit, no swap counted.
  auto r = start(*fx.rt, "python3 -c 'b = bytearray(256 << 20); print(len(b))'",
                 opts);
  REQUIRE(r.sp);
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  auto res = r.done.get();
  CHECK(res.status == -SIGKILL);
  CHECK(res.oom);
}

TEST_CASE("cgroup: values out of range are refused before anything starts") {
  runtime_fixture fx;
  child_cgroup zero_pids, tiny_cpu, nan_cpu;
  zero_pids.pids_max = 0;
  tiny_cpu.cpu_max = 0.001;
  nan_cpu.cpu_max = std::nan("");
  for (auto& [cg, field] :
       {std::pair{zero_pids, "pids_max"}, std::pair{tiny_cpu, "cpu_max"},
        std::pair{nan_cpu, "cpu_max"}}) {
    auto r = start(*fx.rt, "true", with_cgroup(cg));
    REQUIRE_FALSE(r.sp);
    CHECK(is(r.sp.error(), sw_errc::invalid_argument));
    CHECK(describe(r.sp.error()).find(field) != std::string::npos);
  }
}

TEST_CASE("cgroup: where none can be made, limits fail and a bare one is "
          "skipped") {
  auto real = detail::cgroup_base();
  detail::override_cgroup_base({{}, "pretended absent by the test"});
  {
    runtime_fixture fx;
    child_cgroup cg;
    cg.pids_max = 10;
    auto refused = start(*fx.rt, "true", with_cgroup(cg));
    REQUIRE_FALSE(refused.sp);
    CHECK(is(refused.sp.error(), sw_errc::not_supported));
    CHECK(describe(refused.sp.error()).find("pretended absent") !=
          std::string::npos);
    // No limit: started without a cgroup (the process group still holds it).
    auto bare =
        start(*fx.rt, "grep '^0::' /proc/self/cgroup; echo", with_cgroup());
    REQUIRE(bare.sp);
    REQUIRE(bare.done.wait_for(deadline) == std::future_status::ready);
    auto res = bare.done.get();
    CHECK(res.status == 0);
    CHECK(res.out.find("shardwire-") == std::string::npos);
  }
  detail::override_cgroup_base(real);
}
