#include "bench/load_generator.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
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

uint8_t pattern(size_t conn, uint64_t msg, size_t off) {
  return static_cast<uint8_t>(conn * 131 + msg * 7 + off);
}

int connect_blocking(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

struct conn_state {
  int fd = -1;
  size_t id = 0;
  uint64_t next_msg = 0;     // next message index to queue
  uint64_t sent_bytes = 0;   // bytes handed to send()
  uint64_t queued_bytes = 0; // bytes of queued messages
  uint64_t recv_bytes = 0;
  std::deque<clock_type::time_point> started;
  bool want_out = false;
  bool dead = false;
};

} // namespace

double load_result::percentile(double p) const {
  if (latencies_us.empty()) return 0;
  auto v = latencies_us;
  auto k = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

struct load_session::impl {
  load_options opts;
  int ep = -1;
  std::vector<conn_state> conns;
  std::vector<char> out;
  std::vector<char> in;
  uint64_t failed_at_connect = 0;

  explicit impl(const load_options& o)
      : opts(o), conns(o.connections),
        out(o.size * std::max<size_t>(o.pipeline, 1)), in(256 * 1024) {
    ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      c.id = i;
      c.fd = connect_blocking(opts.port);
      if (c.fd < 0) {
        c.dead = true;
        ++failed_at_connect;
        continue;
      }
      int fl = 1;
      ::ioctl(c.fd, FIONBIO, &fl);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    }
  }

  ~impl() {
    for (auto& c : conns)
      if (c.fd >= 0) ::close(c.fd);
    if (ep >= 0) ::close(ep);
  }

  load_result run(double duration, uint64_t requests);
};

load_result load_session::impl::run(double duration, uint64_t requests) {
  load_result res;
  res.failed = failed_at_connect;
  failed_at_connect = 0; // reported once
  // Per connection: at most this many more messages in this run.
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
      // Materialise the pending bytes of the stream from the pattern.
      auto pending =
          std::min<uint64_t>(c.queued_bytes - c.sent_bytes, out.size());
      for (uint64_t k = 0; k < pending; ++k) {
        auto pos = c.sent_bytes + k;
        out[k] =
            static_cast<char>(pattern(c.id, pos / opts.size, pos % opts.size));
      }
      auto n = ::send(c.fd, out.data(), pending, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        c.dead = true;
        ++res.failed;
        return;
      }
      c.sent_bytes += static_cast<uint64_t>(n);
    }
    bool want = c.sent_bytes < c.queued_bytes;
    if (want != c.want_out) {
      c.want_out = want;
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? static_cast<uint32_t>(EPOLLOUT) : 0u);
      ev.data.u64 = c.id;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
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
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        auto got = ::recv(c.fd, in.data(), in.size(), 0);
        if (got <= 0) {
          if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
          c.dead = true;
          ++res.failed;
          continue;
        }
        auto now = clock_type::now();
        for (ssize_t i = 0; i < got; ++i) {
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
        }
      }
    }
  }
  res.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return res;
}

load_session::load_session(const load_options& opts)
    : impl_(std::make_unique<impl>(opts)) {}

load_session::~load_session() = default;

load_result load_session::run(double duration, uint64_t requests) {
  return impl_->run(duration, requests);
}

load_result run_load(const load_options& opts) {
  load_session session{opts};
  return session.run(opts.duration, opts.requests);
}

std::vector<int> open_idle(uint16_t port, size_t n) {
  std::vector<int> fds;
  fds.reserve(n);
  // In batches, so the server's accept backlog never overflows.
  constexpr size_t batch = 200;
  for (size_t start = 0; start < n; start += batch) {
    auto end = std::min(n, start + batch);
    for (size_t i = start; i < end; ++i) {
      int fd = connect_blocking(port);
      if (fd < 0)
        throw std::runtime_error(std::string{"idle connect failed: "} +
                                 std::strerror(errno));
      fds.push_back(fd);
      char b = 'x';
      if (::send(fd, &b, 1, MSG_NOSIGNAL) != 1)
        throw std::runtime_error("idle ping failed");
    }
    for (size_t i = start; i < end; ++i) {
      pollfd p{fds[i], POLLIN, 0};
      char b;
      if (::poll(&p, 1, 10000) != 1 || ::recv(fds[i], &b, 1, 0) != 1)
        throw std::runtime_error("idle connection got no echo");
    }
  }
  return fds;
}

} // namespace bench
