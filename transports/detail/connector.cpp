#include "transports/detail/connector.hpp"

#include "actors/errors.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/stream_transport.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

namespace shardwire::detail {

namespace {

std::string describe_target(const tcp_target& t) {
  return t.host + ":" + std::to_string(t.port);
}

// State of one attempt, shared by its handlers; lives on the shard thread.
template <class Socket>
struct attempt {
  attempt(shard& sh, protocol_factory f, stream_settings st, connect_callback d)
      : s(sh), sock(sh.io()), timer(sh.io()), factory(std::move(f)),
        settings(st), done(std::move(d)) {}

  shard& s;
  Socket sock;
  asio::steady_timer timer;
  protocol_factory factory;
  stream_settings settings;
  connect_callback done;
  bool timed_out = false;
  bool finished = false;

  void fail(caf::error err) {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(std::move(err));
  }

  void succeed(std::string kind) {
    if (finished) return;
    finished = true;
    timer.cancel();
    int fd = sock.release();
    apply_tcp_options(fd, settings);
    spawn_stream_transport(s, fd, std::move(kind), std::move(factory), settings,
                           std::move(done));
  }

  template <class Self>
  void arm_timeout(std::chrono::milliseconds timeout, Self self) {
    if (timeout.count() <= 0) return;
    timer.expires_after(timeout);
    timer.async_wait([self](std::error_code ec) {
      if (ec || self->finished) return;
      self->timed_out = true;
      std::error_code ignored;
      self->sock.close(ignored);
      self->cancel_pending();
    });
  }
};

struct tcp_attempt : attempt<asio::ip::tcp::socket> {
  tcp_attempt(shard& sh, tcp_target t, protocol_factory f, stream_settings st,
              connect_callback d)
      : attempt(sh, std::move(f), st, std::move(d)), target(std::move(t)),
        resolver(sh.io()) {}

  tcp_target target;
  asio::ip::tcp::resolver resolver;

  void cancel_pending() { resolver.cancel(); }
};

struct unix_attempt : attempt<asio::local::stream_protocol::socket> {
  using attempt::attempt;
  void cancel_pending() {}
};

} // namespace

void start_tcp_connect(shard& s, tcp_target target, protocol_factory factory,
                       stream_settings settings, connect_callback done) {
  auto st = std::make_shared<tcp_attempt>(
      s, std::move(target), std::move(factory), settings, std::move(done));
  s.post([st] {
    shard::io_scope scope{st->s};
    st->arm_timeout(st->target.timeout, st);
    auto flags = asio::ip::resolver_base::numeric_service;
    st->resolver.async_resolve(
        st->target.host, std::to_string(st->target.port), flags,
        [st](std::error_code ec, asio::ip::tcp::resolver::results_type res) {
          shard::io_scope scope{st->s};
          if (st->finished) return;
          if (st->timed_out)
            return st->fail(make_error(
                sw_errc::timeout, "connect " + describe_target(st->target)));
          if (ec)
            return st->fail(make_error(sw_errc::unknown_host,
                                       st->target.host + ": " + ec.message()));
          std::vector<asio::ip::tcp::endpoint> eps;
          for (auto& r : res) {
            auto ep = r.endpoint();
            if (st->target.family == AF_INET && !ep.address().is_v4()) continue;
            if (st->target.family == AF_INET6 && !ep.address().is_v6())
              continue;
            eps.push_back(ep);
          }
          if (eps.empty())
            return st->fail(make_error(sw_errc::unknown_host,
                                       st->target.host +
                                           ": no address of the requested "
                                           "family"));
          asio::async_connect(
              st->sock, eps,
              [st](std::error_code ec2, const asio::ip::tcp::endpoint&) {
                shard::io_scope scope{st->s};
                if (st->timed_out)
                  return st->fail(
                      make_error(sw_errc::timeout,
                                 "connect " + describe_target(st->target)));
                if (ec2)
                  return st->fail(make_errno_error(
                      ec2.value(), "connect " + describe_target(st->target)));
                st->succeed("tcp");
              });
        });
  });
}

void start_unix_connect(shard& s, std::string path,
                        std::chrono::milliseconds timeout,
                        protocol_factory factory, stream_settings settings,
                        connect_callback done) {
  auto st = std::make_shared<unix_attempt>(s, std::move(factory), settings,
                                           std::move(done));
  s.post([st, path = std::move(path), timeout] {
    shard::io_scope scope{st->s};
    st->arm_timeout(timeout, st);
    std::string native = path;
    if (!native.empty() && native[0] == '@') native[0] = '\0';
    st->sock.async_connect(
        asio::local::stream_protocol::endpoint{native},
        [st, path](std::error_code ec) {
          shard::io_scope scope{st->s};
          if (st->timed_out)
            return st->fail(make_error(sw_errc::timeout, "connect " + path));
          if (ec)
            return st->fail(make_errno_error(ec.value(), "connect " + path));
          st->succeed("unix");
        });
  });
}

} // namespace shardwire::detail
