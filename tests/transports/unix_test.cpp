// Unix domain stream sockets: create_unix_server / create_unix_connection
// (asyncio section 1.4: stale socket removal, abstract namespace, cleanup).
#include "transports/unix.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sys/stat.h>
#include <sys/un.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
struct temp_dir {
  temp_dir() {
    auto base =
        std::filesystem::temp_directory_path() / "shardwire-unix-XXXXXX";
    std::string tmpl = base.string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const {
    return (path / name).string();
  }
  std::filesystem::path path;
};

enum class file_kind { none, socket, regular, other };

file_kind kind_of(const std::string& path) {
  struct stat st = {};
  if (::lstat(path.c_str(), &st) != 0) return file_kind::none;
  if (S_ISSOCK(st.st_mode)) return file_kind::socket;
  if (S_ISREG(st.st_mode)) return file_kind::regular;
  return file_kind::other;
}

/// Connects a blocking Unix stream socket to `path` ('@' = abstract).
int raw_unix_connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  socklen_t len;
  if (path[0] == '@') {
    std::memcpy(sa.sun_path + 1, path.data() + 1, path.size() - 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    std::memcpy(sa.sun_path, path.data(), path.size());
    len = sizeof(sa);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string unique_abstract_name() {
  std::random_device rd;
  return "@shardwire-test-" + std::to_string(::getpid()) + "-" +
         std::to_string(rd());
}

unix_server_options at(const std::string& path) {
  unix_server_options opts;
  opts.path = path;
  return opts;
}

} // namespace

TEST_CASE("unix server and connection exchange data over a path") {
  runtime_fixture fx;
  temp_dir dir;
  auto path = dir.file("echo.sock");
  auto sink = std::make_shared<info_sink>();
  auto srv = create_unix_server(*fx.rt, info_recorder(sink), at(path));
  REQUIRE(srv);
  REQUIRE(srv->sockets.size() == 1);
  CHECK(srv->sockets[0].family == endpoint::kind::unix_path);
  CHECK(srv->sockets[0].path == path);
  CHECK(kind_of(path) == file_kind::socket);
  auto log = std::make_shared<event_log>();
  auto conn = create_unix_connection(*fx.rt, path, recorder(log));
  REQUIRE(conn);
  // connection_made ran before the call returned.
  REQUIRE(!log->events().empty());
  CHECK(log->events().front() == "connected");
  CHECK(conn->info.kind == "unix");
  CHECK(conn->info.peername.family == endpoint::kind::unix_path);
  CHECK(conn->info.peername.path == path);
  caf::anon_send(conn->transport,
                 shardwire::write{buffer::copy_of("over unix")});
  REQUIRE(
      log->wait_for([](auto& evs) { return joined_data(evs) == "over unix"; }));
  REQUIRE(sink->log->wait_for_event("connected"));
  CHECK(sink->snapshot().at(0).kind == "unix");
  CHECK(sink->snapshot().at(0).sockname.path == path);
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost"));
  REQUIRE(sink->log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("create_unix_connection to a missing path fails with ENOENT") {
  runtime_fixture fx;
  temp_dir dir;
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto log = std::make_shared<event_log>();
  auto conn = create_unix_connection(*fx.rt, dir.file("nobody.sock"),
                                     counting(calls, recorder(log)));
  REQUIRE(!conn);
  INFO(describe(conn.error()));
  CHECK(is_errno(conn.error(), ENOENT));
  CHECK(calls->load() == 0);
}

TEST_CASE("create_unix_connection to a path too long for the kernel fails "
          "at once") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto calls = std::make_shared<std::atomic<int>>(0);
  // A timeout the call must not need: the error comes before any connect.
  auto conn = create_unix_connection(*fx.rt, std::string(5000, 'x'),
                                     counting(calls, recorder(log)),
                                     std::chrono::seconds(60));
  REQUIRE(!conn);
  INFO(describe(conn.error()));
  CHECK((is(conn.error(), sw_errc::invalid_argument) ||
         is_errno(conn.error(), ENAMETOOLONG)));
  CHECK(calls->load() == 0);
}

TEST_CASE("a stale socket file is removed before binding") {
  runtime_fixture fx;
  temp_dir dir;
  auto path = dir.file("stale.sock");
  {
    // Bind and close without unlinking: a socket file nobody listens on.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa = {};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    ::close(fd);
  }
  REQUIRE(kind_of(path) == file_kind::socket);
  // Plain bind() would fail with EADDRINUSE here.
  auto sink = std::make_shared<info_sink>();
  auto srv = create_unix_server(*fx.rt, info_recorder(sink), at(path));
  REQUIRE(srv);
  int c = raw_unix_connect(path);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "fresh") == "fresh");
  raw_close(c);
  REQUIRE(sink->log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("the path of a live unix server gives EADDRINUSE") {
  runtime_fixture fx;
  temp_dir dir;
  auto path = dir.file("live.sock");
  auto sink = std::make_shared<info_sink>();
  auto srv = create_unix_server(*fx.rt, info_recorder(sink), at(path));
  REQUIRE(srv);
  auto again = create_unix_server(*fx.rt, info_recorder(sink), at(path));
  REQUIRE(!again);
  INFO(describe(again.error()));
  CHECK(is_errno(again.error(), EADDRINUSE));
  // The probe did not disturb the first server: its file is still there and
  // it still serves (the probe connection itself gets a protocol and ends).
  CHECK(kind_of(path) == file_kind::socket);
  int c = raw_unix_connect(path);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "still mine") == "still mine");
  raw_close(c);
  // Two connections: the probe (accepted, then EOF) and `c`.
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "connected") == 2 &&
           std::count(evs.begin(), evs.end(), "lost") == 2;
  }));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("the path of a live server with a full accept queue gives "
          "EADDRINUSE without blocking") {
  runtime_fixture fx;
  temp_dir dir;
  auto path = dir.file("busy.sock");
  // A raw listener with backlog 0 that never accepts; one queued client
  // fills its queue, so further connects get EAGAIN (or block forever).
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  REQUIRE(::listen(lfd, 0) == 0);
  std::vector<int> queued;
  bool full = false;
  for (int i = 0; i < 8 && !full; ++i) {
    int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    queued.push_back(c);
    if (::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
      full = errno == EAGAIN;
  }
  REQUIRE(full);
  auto log = std::make_shared<event_log>();
  auto attempt = std::async(std::launch::async, [&] {
    return create_unix_server(*fx.rt, recorder(log), at(path));
  });
  bool returned =
      attempt.wait_for(std::chrono::seconds{5}) == std::future_status::ready;
  CHECK(returned);
  // Unblock a hanging attempt (closing the listener wakes its connect) so
  // the test ends either way.
  for (int c : queued)
    ::close(c);
  ::close(lfd);
  auto srv = attempt.get();
  if (returned) {
    REQUIRE(!srv);
    INFO(describe(srv.error()));
    CHECK(is_errno(srv.error(), EADDRINUSE));
    // The live server's file was not removed.
    CHECK(kind_of(path) == file_kind::socket);
  } else if (srv) {
    REQUIRE(close_server(*fx.rt, srv->actor));
  }
}

TEST_CASE("a regular file at the path is an error and is left alone") {
  runtime_fixture fx;
  temp_dir dir;
  auto path = dir.file("not-a-socket");
  {
    std::ofstream out{path};
    out << "precious";
  }
  auto log = std::make_shared<event_log>();
  auto srv = create_unix_server(*fx.rt, recorder(log), at(path));
  REQUIRE(!srv);
  INFO(describe(srv.error()));
  CHECK(is_errno(srv.error(), EADDRINUSE));
  CHECK(describe(srv.error()).find(path) != std::string::npos);
  REQUIRE(kind_of(path) == file_kind::regular);
  std::ifstream in{path};
  std::string content;
  in >> content;
  CHECK(content == "precious");
}

TEST_CASE("the socket file is removed when the server closes; connections "
          "stay open") {
  runtime_fixture fx;
  temp_dir dir;
  auto path = dir.file("cleanup.sock");
  auto sink = std::make_shared<info_sink>();
  auto srv = create_unix_server(*fx.rt, info_recorder(sink), at(path));
  REQUIRE(srv);
  int c = raw_unix_connect(path);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "before") == "before");
  REQUIRE(kind_of(path) == file_kind::socket);
  REQUIRE(close_server(*fx.rt, srv->actor));
  CHECK(kind_of(path) == file_kind::none);
  CHECK(raw_unix_connect(path) < 0);
  CHECK(round_trip(c, "after") == "after");
  raw_close(c);
  REQUIRE(sink->log->wait_for_event("lost"));
}

TEST_CASE("the socket file is removed when the runtime shuts down") {
  temp_dir dir;
  auto path = dir.file("shutdown.sock");
  {
    runtime_fixture fx;
    auto log = std::make_shared<event_log>();
    auto srv = create_unix_server(*fx.rt, recorder(log), at(path));
    REQUIRE(srv);
    REQUIRE(kind_of(path) == file_kind::socket);
  }
  CHECK(kind_of(path) == file_kind::none);
}

TEST_CASE("abstract namespace names (@name) work for server and client") {
  runtime_fixture fx;
  auto name = unique_abstract_name();
  auto sink = std::make_shared<info_sink>();
  auto srv = create_unix_server(*fx.rt, info_recorder(sink), at(name));
  REQUIRE(srv);
  REQUIRE(srv->sockets.size() == 1);
  CHECK(srv->sockets[0].path == name);
  // Nothing appears in the filesystem (relative to the cwd either).
  CHECK(kind_of(name) == file_kind::none);
  // A raw client reaches it, and so does create_unix_connection.
  int c = raw_unix_connect(name);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "abstract") == "abstract");
  raw_close(c);
  auto log = std::make_shared<event_log>();
  auto conn = create_unix_connection(*fx.rt, name, recorder(log));
  REQUIRE(conn);
  CHECK(conn->info.peername.path == name);
  caf::anon_send(conn->transport, shardwire::write{buffer::copy_of("@")});
  REQUIRE(log->wait_for([](auto& evs) { return joined_data(evs) == "@"; }));
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost"));
  // A second server on the same abstract name is refused.
  auto again = create_unix_server(*fx.rt, info_recorder(sink), at(name));
  REQUIRE(!again);
  CHECK(is_errno(again.error(), EADDRINUSE));
  REQUIRE(close_server(*fx.rt, srv->actor));
  // Closed: the name is free again.
  CHECK(raw_unix_connect(name) < 0);
  auto reopened = create_unix_server(*fx.rt, info_recorder(sink), at(name));
  REQUIRE(reopened);
  REQUIRE(close_server(*fx.rt, reopened->actor));
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 2;
  }));
}
