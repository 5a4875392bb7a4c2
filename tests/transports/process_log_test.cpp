// Log files of process children with size rotation (process_spec::
// stdout_log / stderr_log; transports/detail/rotating_log.hpp): the rotation
// rule on its own, then the files a child's output ends up in.
#include "transports/process_child.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/support/wait_down.hpp"
#include "transports/detail/rotating_log.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// A fresh directory under /tmp, removed with its files at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/shardwire-log-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

TEST_CASE("rotating log: rotates before a write would pass max_bytes") {
  temp_dir dir;
  auto path = dir.file("app.log");
  detail::rotating_log log;
  REQUIRE_FALSE(log.open(path, 10, 2));
  CHECK_FALSE(log.write("aaaa\n"));
  CHECK_FALSE(log.write("bbbb\n")); // exactly 10: no rotation yet
  CHECK_FALSE(exists(path + ".1"));
  CHECK_FALSE(log.write("cccc\n"));
  CHECK(slurp(path + ".1") == "aaaa\nbbbb\n");
  CHECK(slurp(path) == "cccc\n");
  CHECK_FALSE(log.write("dddddd"));
  CHECK_FALSE(log.write("eeeee"));
  // Two backups: the oldest file (aaaa bbbb) is gone.
  CHECK(slurp(path + ".2") == "cccc\n");
  CHECK(slurp(path + ".1") == "dddddd");
  CHECK(slurp(path) == "eeeee");
  CHECK_FALSE(exists(path + ".3"));
  // A write without a newline that does not fit starts a fresh file, and
  // is cut at max_bytes where it is longer than a whole file.
  CHECK_FALSE(log.write(std::string(25, 'f')));
  CHECK(slurp(path) == std::string(5, 'f'));
  CHECK(slurp(path + ".1") == std::string(10, 'f'));
  CHECK(slurp(path + ".2") == std::string(10, 'f'));
  CHECK(log.size() == 5);
}

TEST_CASE("rotating log: a write is split at its last newline that fits") {
  temp_dir dir;
  auto path = dir.file("app.log");
  detail::rotating_log log;
  REQUIRE_FALSE(log.open(path, 10, 5));
  CHECK_FALSE(log.write("12345\n6789\nabc\n"));
  CHECK(slurp(path + ".1") == "12345\n");
  CHECK(slurp(path) == "6789\nabc\n");
}

TEST_CASE("rotating log: an existing file is continued; backups=0 empties "
          "it; max_bytes=0 never rotates") {
  temp_dir dir;
  auto path = dir.file("app.log");
  {
    detail::rotating_log log;
    REQUIRE_FALSE(log.open(path, 0, 3));
    CHECK_FALSE(log.write(std::string(1000, 'x')));
    CHECK_FALSE(exists(path + ".1"));
  }
  detail::rotating_log log;
  REQUIRE_FALSE(log.open(path, 1004, 0));
  CHECK(log.size() == 1000);
  CHECK_FALSE(log.write("more"));
  CHECK(slurp(path) == std::string(1000, 'x') + "more");
  CHECK_FALSE(log.write("!"));
  CHECK(slurp(path) == "!");
  CHECK_FALSE(exists(path + ".1"));
  detail::rotating_log bad;
  auto err = bad.open(dir.file("missing-dir/app.log"), 10, 1);
  CHECK(is_errno(err, ENOENT));
  CHECK(describe(err).find("missing-dir/app.log") != std::string::npos);
}

TEST_CASE("process log files: stdout and stderr byte for byte, apart or "
          "merged") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  temp_dir dir;
  std::string want_out, want_err;
  for (int i = 1; i <= 50; ++i) {
    want_out += "out-" + std::to_string(i) + "\n";
    want_err += "err-" + std::to_string(i) + "\n";
  }
  const std::string script =
      "i=1; while [ $i -le 50 ]; do echo out-$i; echo err-$i >&2; "
      "i=$((i+1)); done";
  SECTION("apart") {
    process_spec spec;
    spec.id = "logged";
    spec.argv = {"/bin/sh", "-c", script};
    spec.stdout_log = process_log_file{dir.file("out.log")};
    spec.stderr_log = process_log_file{dir.file("err.log")};
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    REQUIRE(wait_down(self, child) == caf::exit_reason::normal);
    CHECK(slurp(dir.file("out.log")) == want_out);
    CHECK(slurp(dir.file("err.log")) == want_err);
  }
  SECTION("merged into stdout's file") {
    process_spec spec;
    spec.id = "merged";
    spec.argv = {"/bin/sh", "-c", script};
    spec.options.stderr_ = stdio::stdout_;
    spec.stdout_log = process_log_file{dir.file("all.log")};
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    REQUIRE(wait_down(self, child) == caf::exit_reason::normal);
    auto all = slurp(dir.file("all.log"));
    CHECK(all.size() == want_out.size() + want_err.size());
    CHECK(all.rfind("out-1\nerr-1\n", 0) == 0);
  }
}

TEST_CASE("process log files: rotation keeps the newest output") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  temp_dir dir;
  std::string want;
  for (int i = 100; i < 200; ++i)
    want += "line-" + std::to_string(i) + "\n"; // 9 bytes each
  process_spec spec;
  spec.id = "rotated";
  spec.argv = {"/bin/sh", "-c",
               "i=100; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); "
               "done"};
  auto path = dir.file("out.log");
  spec.stdout_log = process_log_file{path, 90, 3};
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  REQUIRE(wait_down(self, child) == caf::exit_reason::normal);
  // Oldest to newest: what is kept is the end of the output, in order,
  // whole lines, no file above 90 bytes, however the output was chunked.
  std::string kept;
  for (auto name : {".3", ".2", ".1", ""}) {
    auto part = slurp(path + name);
    CHECK(part.size() <= 90);
    CHECK((part.empty() || part.back() == '\n'));
    kept += part;
  }
  REQUIRE(!kept.empty());
  CHECK(kept.size() < want.size()); // 900 bytes do not fit 4 files of 90
  CHECK(want.compare(want.size() - kept.size(), kept.size(), kept) == 0);
  CHECK(exists(path + ".3"));
  CHECK_FALSE(exists(path + ".4"));
}

TEST_CASE("process log files: a file that cannot be opened fails the start, "
          "naming it") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  process_spec spec;
  spec.id = "nolog";
  spec.argv = {"/bin/sh", "-c", "echo never"};
  spec.stdout_log = process_log_file{"/nonexistent-dir/out.log"};
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  auto reason = wait_down(self, child);
  CHECK(is_errno(reason, ENOENT));
  CHECK(describe(reason).find("stdout_log /nonexistent-dir/out.log") !=
        std::string::npos);
}
