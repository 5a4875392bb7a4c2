// demos/kv_quorum/disk_file.hpp: a replica's durable file: appended
// versions are replayed at start (newest per key), a torn last line is
// ignored and cut, a corrupt complete line refuses the file.
#include "demos/kv_quorum/disk_file.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

using kv_quorum::disk;
using kv_quorum::disk_file;
using kv_quorum::versioned;

namespace {

struct temp_path {
  std::string path;
  temp_path() {
    char tmpl[] = "/tmp/kv_quorum_disk_XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
  }
  ~temp_path() { std::remove(path.c_str()); }
};

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

versioned v(uint64_t counter, uint64_t writer, std::string value) {
  return versioned{{counter, writer}, std::move(value)};
}

} // namespace

TEST_CASE("kv_quorum disk_file: stores are appended and replayed") {
  temp_path tmp;
  std::string error;
  {
    disk d;
    auto f = disk_file::open(tmp.path, d, error);
    REQUIRE(f);
    CHECK(f->replayed() == 0);
    f->attach(d);
    d.store("a", v(1, 7, "one"));
    d.store("b", v(1, 7, "with spaces"));
    d.store("a", v(2, 8, "two"));
    d.store("a", v(1, 9, "older")); // not newer: neither kept nor written
    d.store("e", v(1, 7, ""));
    CHECK(d.get("a") == v(2, 8, "two"));
  }
  CHECK(slurp(tmp.path) == "S 0 a 1 7 one\nS 0 b 1 7 with spaces\n"
                           "S 0 a 2 8 two\nS 0 e 1 7 \n");
  disk d;
  auto f = disk_file::open(tmp.path, d, error);
  REQUIRE(f);
  CHECK(f->replayed() == 4);
  CHECK_FALSE(f->cut_torn_line());
  CHECK(d.data.size() == 3);
  CHECK(d.get("a") == v(2, 8, "two"));
  CHECK(d.get("b") == v(1, 7, "with spaces"));
  CHECK(d.get("e") == v(1, 7, ""));
  CHECK(d.get("zz") == versioned{});
}

TEST_CASE("kv_quorum disk_file: a torn last line is ignored and cut") {
  temp_path tmp;
  {
    std::ofstream out{tmp.path, std::ios::binary};
    out << "S 0 a 1 7 one\nS 0 a 2 7 tw"; // the crash tore the second write
  }
  std::string error;
  {
    disk d;
    auto f = disk_file::open(tmp.path, d, error);
    REQUIRE(f);
    CHECK(f->replayed() == 1);
    CHECK(f->cut_torn_line());
    CHECK(d.get("a") == v(1, 7, "one"));
    CHECK(slurp(tmp.path) == "S 0 a 1 7 one\n");
    f->attach(d);
    d.store("a", v(3, 7, "three")); // starts a line of its own
  }
  CHECK(slurp(tmp.path) == "S 0 a 1 7 one\nS 0 a 3 7 three\n");
  disk d;
  auto f = disk_file::open(tmp.path, d, error);
  REQUIRE(f);
  CHECK(f->replayed() == 2);
  CHECK(d.get("a") == v(3, 7, "three"));
}

TEST_CASE("kv_quorum disk_file: a corrupt complete line refuses the file") {
  temp_path tmp;
  {
    std::ofstream out{tmp.path, std::ios::binary};
    out << "S 0 a 1 7 one\nQ 1 a\nS 0 b 1 7 two\n";
  }
  disk d;
  std::string error;
  CHECK_FALSE(disk_file::open(tmp.path, d, error));
  CHECK(error.find("line 2") != std::string::npos);
}

TEST_CASE("kv_quorum disk_file: an unopenable path names the file") {
  disk d;
  std::string error;
  CHECK_FALSE(disk_file::open("/nonexistent-dir/x.log", d, error));
  CHECK(error.find("/nonexistent-dir/x.log") != std::string::npos);
}
