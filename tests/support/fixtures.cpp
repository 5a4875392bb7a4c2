#include "tests/support/fixtures.hpp"

#include "transports/detail/orphan_guard.hpp"

#include <mutex>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shardwire::test {

size_t open_fd_count() {
  size_t n = 0;
  if (auto* dir = ::opendir("/proc/self/fd")) {
    while (auto* ent = ::readdir(dir))
      if (ent->d_name[0] != '.') ++n;
    ::closedir(dir);
    return n - 1; // the directory stream itself
  }
  return 0;
}

test_config::test_config(size_t n_shards) {
  shards = n_shards;
  log_level =
      std::getenv("SHARDWIRE_LOG") ? std::getenv("SHARDWIRE_LOG") : "error";
  shutdown_grace_ms = 5000;
}

runtime_fixture::runtime_fixture(size_t n_shards)
    : runtime_fixture(n_shards, {}) {}

runtime_fixture::runtime_fixture(size_t n_shards,
                                 const std::function<void(test_config&)>& tweak)
    : fds_before(open_fd_count()),
      guard_before(detail::orphan_guard_pid() >= 0),
      cfg(n_shards) {
  if (tweak) tweak(cfg);
  rt = std::make_unique<runtime>(cfg);
}

runtime_fixture::~runtime_fixture() {
  rt->shutdown();
  size_t left = 0;
  for (size_t i = 0; i < rt->shard_count(); ++i)
    left += rt->shard_at(i).live_actors();
  CHECK(left == 0);
  rt.reset();
  // Leak check: every socket a test opened through shardwire is closed.
  // The orphan guard's pipe is the one descriptor meant to stay: it opens
  // with the program's first child and lives as long as the program.
  size_t guard = guard_before || detail::orphan_guard_pid() < 0 ? 0 : 1;
  CHECK(open_fd_count() <= fds_before + guard);
}

// -- event_log ----------------------------------------------------------------

void event_log::add(std::string ev) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    events_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

std::vector<std::string> event_log::events() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return events_;
}

bool event_log::wait_for(
    const std::function<bool(const std::vector<std::string>&)>& pred,
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> guard{mtx_};
  return cv_.wait_for(guard, timeout, [&] { return pred(events_); });
}

bool event_log::wait_for_event(const std::string& ev, bool prefix,
                               std::chrono::milliseconds timeout) {
  return wait_for(
      [&](const std::vector<std::string>& evs) {
        for (auto& e : evs)
          if (prefix ? e.rfind(ev, 0) == 0 : e == ev) return true;
        return false;
      },
      timeout);
}

std::string event_log::received() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  for (auto& e : events_)
    if (e.rfind("data:", 0) == 0) out += e.substr(5);
  return out;
}

size_t event_log::count(const std::string& ev, bool prefix) const {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t n = 0;
  for (auto& e : events_)
    if (prefix ? e.rfind(ev, 0) == 0 : e == ev) ++n;
  return n;
}

void event_log::add_thread(std::thread::id id) {
  std::lock_guard<std::mutex> guard{mtx_};
  threads_.push_back(id);
}

std::vector<std::thread::id> event_log::threads() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return threads_;
}

// -- recorder -----------------------------------------------------------------

namespace {

// Guards `transport_out`: a factory's recorders share it and run on
// several shard threads (unsynchronized, the handle's reference count can
// be corrupted).
std::mutex transport_out_mtx;

protocol_actor::behavior_type recorder_impl(protocol_actor::pointer self,
                                            recorder_state st) {
  // This connection's transport (echo writes go here, not to whichever
  // connection published to `transport_out` last).
  auto mine = std::make_shared<transport_actor>();
  return {
      [self, st, mine](connected& msg) {
        st.log->add_thread(std::this_thread::get_id());
        *mine = msg.transport;
        if (st.transport_out) {
          std::lock_guard<std::mutex> guard{transport_out_mtx};
          *st.transport_out = msg.transport;
        }
        if (st.opts.pause_in_connected)
          self->send(msg.transport, pause_reading{});
        st.log->add("connected");
      },
      [self, st, mine](data& msg) {
        st.log->add_thread(std::this_thread::get_id());
        if (st.opts.throw_on_data)
          throw std::runtime_error("recorder: throw_on_data");
        if (st.opts.slow_ms > 0)
          std::this_thread::sleep_for(
              std::chrono::milliseconds(st.opts.slow_ms));
        st.log->add("data:" + msg.bytes.str());
        if (st.opts.echo && *mine) self->send(*mine, write{msg.bytes});
      },
      [st](eof) {
        st.log->add("eof");
        return st.opts.keep_open_on_eof;
      },
      [st](pause) { st.log->add("pause"); },
      [st](shardwire::resume) { st.log->add("resume"); },
      [self, st](lost& msg) {
        st.log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
        self->quit();
      },
  };
}

} // namespace

protocol_factory recorder(event_log_ptr log, recorder_options opts,
                          std::shared_ptr<transport_actor> transport_out) {
  if (!transport_out) transport_out = std::make_shared<transport_actor>();
  recorder_state st{std::move(log), opts, std::move(transport_out)};
  return protocol_fun(recorder_impl, st);
}

// -- raw peers ----------------------------------------------------------------

raw_listener::raw_listener() {
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  REQUIRE(::listen(fd, 128) == 0);
}

raw_listener::~raw_listener() {
  raw_close(fd);
}

uint16_t raw_listener::port() const {
  sockaddr_in sa = {};
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

int raw_listener::accept_one(std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return -1;
  return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
}

int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool raw_send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

namespace {

// Reads what is available within the remaining time; 0 = EOF, -1 = error or
// timeout.
ssize_t read_some(int fd, char* buf, size_t n,
                  std::chrono::steady_clock::time_point until) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd p{fd, POLLIN, 0};
    auto rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return -1;
    auto got = ::recv(fd, buf, n, 0);
    if (got < 0 && errno == EINTR) continue;
    return got;
  }
}

} // namespace

std::string raw_read_exact(int fd, size_t n,
                           std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    auto got = read_some(fd, buf, std::min(sizeof(buf), n - out.size()), until);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

std::string raw_read_to_eof(int fd, bool* eof_seen,
                            std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  std::string out;
  char buf[65536];
  if (eof_seen) *eof_seen = false;
  for (;;) {
    auto got = read_some(fd, buf, sizeof(buf), until);
    if (got == 0 && eof_seen) *eof_seen = true;
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

void raw_reset(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::close(fd);
}

void raw_close(int fd) {
  if (fd >= 0) ::close(fd);
}

} // namespace shardwire::test
