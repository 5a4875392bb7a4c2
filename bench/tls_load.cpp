#include "bench/tls_load.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bench {

namespace {

using clock_type = std::chrono::steady_clock;

// The byte pattern of bench/load_generator.cpp.
uint8_t pattern(size_t conn, uint64_t msg, size_t off) {
  return static_cast<uint8_t>(conn * 131 + msg * 7 + off);
}

std::string openssl_reason() {
  char buf[256] = "no reason";
  if (auto code = ERR_get_error()) ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

// The client context of every TLS client here (see the header).
SSL_CTX* client_context() {
  static SSL_CTX* ctx = [] {
    // The socket BIO writes with write(): a peer's reset must be an error,
    // not a SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c == nullptr)
      throw std::runtime_error("SSL_CTX_new: " + openssl_reason());
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(c, 1);
    return c;
  }();
  return ctx;
}

int tcp_socket(bool nonblocking) {
  int fd = ::socket(
      AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0),
      0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  return sa;
}

void set_nonblocking(int fd, bool on) {
  int fl = on ? 1 : 0;
  ::ioctl(fd, FIONBIO, &fl);
}

// A blocking connect and handshake; the connection stays blocking. nullptr
// (and fd -1) on failure.
SSL* connect_tls(uint16_t port, int& fd) {
  fd = tcp_socket(false);
  if (fd < 0) return nullptr;
  // A server that never answers fails the run instead of hanging it.
  timeval limit{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  auto sa = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    fd = -1;
    return nullptr;
  }
  SSL* ssl = SSL_new(client_context());
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
    ERR_clear_error();
    SSL_free(ssl);
    ::close(fd);
    fd = -1;
    return nullptr;
  }
  return ssl;
}

// Sends close_notify (without waiting for the peer's), frees, closes.
void close_tls(SSL* ssl, int fd) {
  if (ssl != nullptr) {
    SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
  }
  if (fd >= 0) ::close(fd);
}

struct conn_state {
  int fd = -1;
  SSL* ssl = nullptr;
  size_t id = 0;
  uint64_t next_msg = 0;
  uint64_t sent_bytes = 0;
  uint64_t queued_bytes = 0;
  uint64_t recv_bytes = 0;
  // Length of an SSL_write that wants to be repeated (OpenSSL: with the
  // same bytes; the pattern gives them again), 0 if none.
  size_t retry_len = 0;
  std::deque<clock_type::time_point> started;
  uint32_t events = 0;
  bool dead = false;
};

} // namespace

// -- echo load ----------------------------------------------------------------

struct tls_load_session::impl {
  load_options opts;
  int ep = -1;
  std::vector<conn_state> conns;
  std::vector<char> out;
  std::vector<char> in;
  uint64_t failed_at_connect = 0;
  std::string negotiated;

  explicit impl(const load_options& o)
      : opts(o), conns(o.connections),
        out(o.size * std::max<size_t>(o.pipeline, 1)), in(256 * 1024) {
    ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      c.id = i;
      c.ssl = connect_tls(opts.port, c.fd);
      if (c.ssl == nullptr) {
        c.dead = true;
        ++failed_at_connect;
        continue;
      }
      if (negotiated.empty()) {
        negotiated = SSL_get_version(c.ssl);
        if (auto* cipher = SSL_get_current_cipher(c.ssl))
          negotiated += std::string{" "} + SSL_CIPHER_get_name(cipher);
      }
      set_nonblocking(c.fd, true);
      epoll_event ev{};
      ev.events = c.events = EPOLLIN;
      ev.data.u64 = i;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    }
  }

  ~impl() {
    for (auto& c : conns)
      if (c.fd >= 0) close_tls(c.dead ? nullptr : c.ssl, c.fd);
    if (ep >= 0) ::close(ep);
  }

  void watch(conn_state& c, bool want_out) {
    uint32_t events =
        EPOLLIN | (want_out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    if (events == c.events) return;
    c.events = events;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void fail(conn_state& c, load_result& res) {
    c.dead = true;
    ++res.failed;
    ERR_clear_error();
  }

  load_result run(double duration, uint64_t requests);
};

load_result tls_load_session::impl::run(double duration, uint64_t requests) {
  load_result res;
  res.failed = failed_at_connect;
  failed_at_connect = 0; // reported once
  uint64_t per_conn_limit =
      requests == 0 ? UINT64_MAX
                    : (requests + opts.connections - 1) / opts.connections;
  std::vector<uint64_t> limit(conns.size());
  for (auto& c : conns)
    limit[c.id] =
        per_conn_limit == UINT64_MAX ? UINT64_MAX : c.next_msg + per_conn_limit;
  auto t0 = clock_type::now();
  auto stop_at = t0 + std::chrono::duration_cast<clock_type::duration>(
                          std::chrono::duration<double>(duration));
  bool running = true;

  auto queue_messages = [&](conn_state& c) {
    while (running && c.started.size() < opts.pipeline &&
           c.next_msg < limit[c.id]) {
      c.started.push_back(clock_type::now());
      c.queued_bytes += opts.size;
      ++c.next_msg;
    }
  };

  auto flush = [&](conn_state& c) {
    while (c.sent_bytes < c.queued_bytes) {
      auto pending = c.retry_len != 0
                         ? c.retry_len
                         : static_cast<size_t>(std::min<uint64_t>(
                               c.queued_bytes - c.sent_bytes, out.size()));
      for (size_t k = 0; k < pending; ++k) {
        auto pos = c.sent_bytes + k;
        out[k] =
            static_cast<char>(pattern(c.id, pos / opts.size, pos % opts.size));
      }
      int n = SSL_write(c.ssl, out.data(), static_cast<int>(pending));
      if (n <= 0) {
        int e = SSL_get_error(c.ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
          c.retry_len = pending;
          break;
        }
        fail(c, res);
        return;
      }
      c.retry_len = 0;
      c.sent_bytes += static_cast<uint64_t>(n);
    }
    watch(c, c.sent_bytes < c.queued_bytes);
  };

  // Takes every decrypted byte there is; false if the connection died.
  auto receive = [&](conn_state& c) {
    for (;;) {
      int got = SSL_read(c.ssl, in.data(), static_cast<int>(in.size()));
      if (got <= 0) {
        int e = SSL_get_error(c.ssl, got);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
        fail(c, res);
        return false;
      }
      auto now = clock_type::now();
      for (int i = 0; i < got; ++i) {
        auto pos = c.recv_bytes + static_cast<uint64_t>(i);
        if (static_cast<uint8_t>(in[static_cast<size_t>(i)]) !=
            pattern(c.id, pos / opts.size, pos % opts.size))
          ++res.corrupt;
      }
      auto before = c.recv_bytes / opts.size;
      c.recv_bytes += static_cast<uint64_t>(got);
      res.bytes += static_cast<uint64_t>(got);
      auto done = c.recv_bytes / opts.size - before;
      for (uint64_t d = 0; d < done && !c.started.empty(); ++d) {
        res.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(now - c.started.front())
                .count());
        c.started.pop_front();
        ++res.requests;
      }
      if (done > 0) {
        queue_messages(c);
        flush(c);
        if (c.dead) return false;
      }
    }
  };

  for (auto& c : conns)
    if (!c.dead) {
      queue_messages(c);
      flush(c);
    }

  std::vector<epoll_event> events(1024);
  for (;;) {
    size_t active = 0;
    for (auto& c : conns)
      if (!c.dead && !c.started.empty()) ++active;
    if (active == 0) break;
    if (requests == 0 && running && clock_type::now() >= stop_at)
      running = false; // let in-flight messages finish, queue no more
    int n =
        ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      auto& c = conns[events[k].data.u64];
      if (c.dead) continue;
      if (events[k].events & EPOLLOUT) flush(c);
      if (c.dead) continue;
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c);
    }
  }
  res.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return res;
}

tls_load_session::tls_load_session(const load_options& opts)
    : impl_(std::make_unique<impl>(opts)) {}

tls_load_session::~tls_load_session() = default;

load_result tls_load_session::run(double duration, uint64_t requests) {
  return impl_->run(duration, requests);
}

const std::string& tls_load_session::negotiated() const {
  return impl_->negotiated;
}

// -- handshakes ---------------------------------------------------------------

namespace {

struct connector {
  int fd = -1;
  SSL* ssl = nullptr;
  bool draining = false; // close_notify sent; reading until the server closes
  uint32_t events = 0;
};

} // namespace

handshake_result run_handshakes(uint16_t port, size_t connectors,
                                double duration) {
  handshake_result res;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<connector> slots(connectors);
  auto t0 = clock_type::now();
  auto stop_at = t0 + std::chrono::duration_cast<clock_type::duration>(
                          std::chrono::duration<double>(duration));
  bool running = true;
  size_t open = 0;
  char sink[4096];

  auto watch = [&](size_t i, uint32_t events) {
    auto& s = slots[i];
    if (events == s.events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    ::epoll_ctl(ep, s.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s.fd, &ev);
    s.events = events;
  };
  auto finish = [&](size_t i) {
    auto& s = slots[i];
    if (s.ssl != nullptr) SSL_free(s.ssl);
    ERR_clear_error();
    ::close(s.fd);
    s = connector{};
    --open;
  };
  std::vector<size_t> restart; // slots whose connection ended
  auto end_slot = [&](size_t i) {
    finish(i);
    if (running) restart.push_back(i);
  };
  auto begin = [&](size_t i) {
    auto& s = slots[i];
    s.fd = tcp_socket(true);
    if (s.fd < 0) {
      ++res.failed;
      return false;
    }
    ++open;
    auto sa = loopback(port);
    if (::connect(s.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 &&
        errno != EINPROGRESS) {
      ++res.failed;
      end_slot(i);
      return false;
    }
    s.ssl = SSL_new(client_context());
    SSL_set_fd(s.ssl, s.fd);
    SSL_set_connect_state(s.ssl);
    return true;
  };
  auto step = [&](size_t i) {
    auto& s = slots[i];
    if (!s.draining) {
      int r = SSL_do_handshake(s.ssl);
      if (r != 1) {
        int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_WANT_READ) return watch(i, EPOLLIN);
        if (e == SSL_ERROR_WANT_WRITE) return watch(i, EPOLLOUT);
        ++res.failed;
        return end_slot(i);
      }
      if (SSL_session_reused(s.ssl)) ++res.resumed;
      SSL_shutdown(s.ssl); // sends close_notify
      ERR_clear_error();
      SSL_free(s.ssl);
      s.ssl = nullptr;
      s.draining = true;
    }
    for (;;) {
      auto n = ::recv(s.fd, sink, sizeof(sink), 0);
      if (n > 0) continue; // tickets, the server's close_notify
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return watch(i, EPOLLIN);
      break; // the server closed (or reset after our close_notify)
    }
    ++res.handshakes;
    end_slot(i);
  };

  for (size_t i = 0; i < slots.size(); ++i)
    if (begin(i)) step(i);
  std::vector<epoll_event> events(1024);
  while (open > 0 || !restart.empty()) {
    if (running && clock_type::now() >= stop_at) running = false;
    if (!running) restart.clear();
    auto again = std::move(restart);
    restart.clear();
    for (auto i : again)
      if (begin(i)) step(i);
    if (open == 0) continue;
    int n =
        ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      auto i = events[k].data.u64;
      if (slots[i].fd >= 0) step(i);
    }
  }
  ::close(ep);
  res.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return res;
}

// -- idle connections ---------------------------------------------------------

struct tls_idle_connections::impl {
  std::vector<std::pair<SSL*, int>> conns;

  ~impl() {
    for (auto& [ssl, fd] : conns)
      close_tls(ssl, fd);
  }
};

tls_idle_connections::tls_idle_connections(uint16_t port, size_t n)
    : impl_(std::make_unique<impl>()) {
  impl_->conns.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    int fd = -1;
    SSL* ssl = connect_tls(port, fd);
    if (ssl == nullptr)
      throw std::runtime_error("idle TLS connection " + std::to_string(i) +
                               " failed: " + std::strerror(errno));
    impl_->conns.emplace_back(ssl, fd);
    char b = 'x';
    if (SSL_write(ssl, &b, 1) != 1 || SSL_read(ssl, &b, 1) != 1 || b != 'x')
      throw std::runtime_error("idle TLS connection got no echo");
  }
}

tls_idle_connections::~tls_idle_connections() = default;

} // namespace bench
