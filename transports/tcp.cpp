#include "transports/tcp.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/connector.hpp"
#include "transports/detail/listener.hpp"
#include "transports/detail/socket_util.hpp"

namespace shardwire {

namespace {

void set_tcp_options(stream_settings& st, const tcp_keepalive& ka,
                     std::chrono::milliseconds user_timeout) {
  st.keepalive_idle = ka.idle;
  st.keepalive_interval = ka.interval;
  st.keepalive_count = ka.count;
  st.user_timeout = user_timeout;
}

shard& choose(runtime& rt, const caf::optional<size_t>& which) {
  if (which) return rt.shard_at(*which % rt.shard_count());
  return rt.pick_shard();
}

} // namespace

void async_create_connection(runtime& rt, connect_options opts,
                             protocol_factory factory, connect_callback done) {
  detail::tcp_target target{opts.host, opts.port, opts.family, opts.timeout};
  auto settings = stream_settings::from(rt);
  settings.reads_follow_writes = opts.reads_follow_writes;
  set_tcp_options(settings, opts.keepalive, opts.user_timeout);
  if (auto err = detail::check_tcp_options(settings)) {
    if (done) done(std::move(err));
    return;
  }
  settings.tls = std::move(opts.tls);
  // asyncio: server_hostname defaults to the host connected to.
  if (settings.tls && settings.tls.server_hostname.empty())
    settings.tls.server_hostname = opts.host;
  detail::start_tcp_connect(choose(rt, opts.shard), std::move(target),
                            std::move(factory), settings, std::move(done));
}

caf::expected<connection> create_connection(runtime& rt, connect_options opts,
                                            protocol_factory factory) {
  return await_connection([&](connect_callback cb) {
    async_create_connection(rt, opts, factory, std::move(cb));
  });
}

caf::expected<server> create_server(runtime& rt, protocol_factory factory,
                                    server_options opts) {
  if (!factory)
    return make_error(sw_errc::invalid_argument, "no protocol factory");
  if (opts.hosts.empty()) opts.hosts.emplace_back();
  auto settings = stream_settings::from(rt);
  settings.reads_follow_writes = opts.reads_follow_writes;
  set_tcp_options(settings, opts.keepalive, opts.user_timeout);
  if (auto err = detail::check_tcp_options(settings)) return err;
  settings.tls = opts.tls;
  detail::listen_options lo{opts.backlog, opts.reuse_address, opts.reuse_port};
  std::vector<detail::listener_socket> socks;
  auto cleanup = [&] {
    for (auto& s : socks)
      detail::close_fd(s.fd);
  };
  for (auto& host : opts.hosts) {
    auto addrs = detail::resolve_passive(host, opts.port);
    if (!addrs) {
      cleanup();
      return addrs.error();
    }
    for (auto& [ss, len] : *addrs) {
      auto* sa = reinterpret_cast<const sockaddr*>(&ss);
      auto what = to_string(detail::to_endpoint(sa, len));
      auto fd = detail::listen_on(sa, len, lo, what);
      if (!fd) {
        cleanup();
        return fd.error();
      }
      socks.push_back(
          detail::listener_socket{*fd, detail::local_endpoint(*fd), {}});
    }
  }
  server result;
  for (auto& s : socks)
    result.sockets.push_back(s.address);
  detail::listener_settings ls{"tcp", opts.backlog, opts.start_serving,
                               settings};
  auto& home = rt.shard_at(opts.listener_shard % rt.shard_count());
  result.actor = spawn_on<detail::listener>(home, &rt, std::move(socks),
                                            std::move(factory), std::move(ls));
  return result;
}

} // namespace shardwire
