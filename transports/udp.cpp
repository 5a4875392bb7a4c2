#include "transports/udp.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/await_result.hpp"
#include "transports/detail/datagram_transport.hpp"
#include "transports/detail/socket_util.hpp"

#include <caf/send.hpp>

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <optional>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardwire {

namespace {

using address = std::pair<sockaddr_storage, socklen_t>;

caf::expected<std::vector<address>> resolve(const host_port& hp, int family,
                                            bool passive) {
  addrinfo hints = {};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  auto port = std::to_string(hp.port);
  int rc = ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(),
                         port.c_str(), &hints, &res);
  if (rc != 0)
    return make_error(sw_errc::unknown_host,
                      hp.host + ": " + ::gai_strerror(rc));
  std::vector<address> out;
  for (auto* p = res; p != nullptr; p = p->ai_next) {
    address a{};
    std::memcpy(&a.first, p->ai_addr, p->ai_addrlen);
    a.second = p->ai_addrlen;
    out.push_back(a);
  }
  ::freeaddrinfo(res);
  if (out.empty())
    return make_error(sw_errc::unknown_host, hp.host + ": no address");
  return out;
}

std::string describe_address(const address& a) {
  return to_string(detail::to_endpoint(
      reinterpret_cast<const sockaddr*>(&a.first), a.second));
}

struct made_socket {
  int fd;
  std::string kind;
  bool connected;
};

// Creates, configures, binds and connects the socket of `opts`.
caf::expected<made_socket> make_socket(const datagram_options& opts) {
  bool is_unix = !opts.local_path.empty() || !opts.remote_path.empty() ||
                 opts.family == AF_UNIX;
  std::optional<address> local;
  std::optional<address> remote;
  int family = opts.family;
  if (is_unix) {
    if (opts.local_addr || opts.remote_addr)
      return make_error(sw_errc::invalid_argument,
                        "Unix datagram endpoints take paths, not host/port");
    if (family != 0 && family != AF_UNIX)
      return make_error(sw_errc::invalid_argument, "paths need family AF_UNIX");
    family = AF_UNIX;
    if (!opts.local_path.empty()) {
      auto a = detail::unix_address(opts.local_path);
      if (!a) return a.error();
      local = *a;
    }
    if (!opts.remote_path.empty()) {
      auto a = detail::unix_address(opts.remote_path);
      if (!a) return a.error();
      remote = *a;
    }
  } else {
    if (!opts.local_addr && !opts.remote_addr && family == 0)
      return make_error(sw_errc::invalid_argument,
                        "unexpected address family: give local_addr, "
                        "remote_addr or family");
    if (family != 0 && family != AF_INET && family != AF_INET6)
      return make_error(sw_errc::invalid_argument,
                        "family must be AF_INET, AF_INET6, AF_UNIX or 0");
    if (opts.remote_addr) {
      auto rs = resolve(*opts.remote_addr, family, false);
      if (!rs) return rs.error();
      remote = rs->front();
      family = remote->first.ss_family;
    }
    if (opts.local_addr) {
      auto ls = resolve(*opts.local_addr, family, true);
      if (!ls) return ls.error();
      local = ls->front();
      family = local->first.ss_family;
    }
  }
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_errno_error(errno, "socket");
  auto fail = [&](int err, std::string what) -> caf::error {
    detail::close_fd(fd);
    return make_errno_error(err, std::move(what));
  };
  int one = 1;
  if (opts.reuse_port && !is_unix &&
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
    return fail(errno, "SO_REUSEPORT");
  if (opts.allow_broadcast &&
      ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0)
    return fail(errno, "SO_BROADCAST");
  if (local) {
    if (is_unix && opts.local_path[0] != '@' && opts.local_path[0] != '\0') {
      // asyncio removes a socket file left at the path (a stale endpoint).
      struct stat st = {};
      if (::stat(opts.local_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
        ::unlink(opts.local_path.c_str());
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local->first),
               local->second) != 0)
      return fail(errno, "bind " + (is_unix ? opts.local_path
                                            : describe_address(*local)));
  }
  if (remote) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&remote->first),
                  remote->second) != 0)
      return fail(errno, "connect " + (is_unix ? opts.remote_path
                                               : describe_address(*remote)));
  }
  return made_socket{fd, is_unix ? "unix_dgram" : "udp", remote.has_value()};
}

datagram_settings settings_for(const runtime& rt, const datagram_options& opts,
                               const made_socket& s) {
  datagram_settings ds;
  ds.recv_batch = opts.recv_batch == 0 ? 1 : opts.recv_batch;
  ds.send_batch = opts.send_batch == 0 ? 1 : opts.send_batch;
  // UDP payloads never exceed 65507 bytes; asyncio reads Unix datagrams
  // with 256 KiB and truncates longer ones.
  ds.max_size = s.kind == "udp" ? 64 * 1024 : 256 * 1024;
  auto& cfg = rt.config();
  ds.read_high_water = cfg.read_high_water;
  ds.read_low_water = std::min(cfg.read_low_water, cfg.read_high_water);
  ds.connected = s.connected;
  return ds;
}

} // namespace

void async_create_datagram_endpoint(runtime& rt,
                                    datagram_protocol_factory factory,
                                    datagram_options opts,
                                    datagram_callback done) {
  if (!factory) {
    done(make_error(sw_errc::invalid_argument, "no protocol factory"));
    return;
  }
  auto s = make_socket(opts);
  if (!s) {
    done(s.error());
    return;
  }
  auto& home = opts.shard ? rt.shard_at(*opts.shard % rt.shard_count())
                          : rt.pick_shard();
  detail::spawn_datagram_transport(home, s->fd, s->kind, std::move(factory),
                                   settings_for(rt, opts, *s), std::move(done));
}

caf::expected<datagram_endpoint>
create_datagram_endpoint(runtime& rt, datagram_protocol_factory factory,
                         datagram_options opts) {
  return detail::await_result<datagram_endpoint>(
      [&](datagram_callback cb) {
        async_create_datagram_endpoint(rt, std::move(factory), std::move(opts),
                                       std::move(cb));
      },
      "create_datagram_endpoint");
}

caf::expected<std::vector<datagram_endpoint>>
create_datagram_endpoints(runtime& rt, datagram_protocol_factory factory,
                          datagram_options opts, size_t count) {
  if (!opts.local_addr)
    return make_error(sw_errc::invalid_argument,
                      "create_datagram_endpoints needs local_addr");
  if (opts.remote_addr)
    return make_error(sw_errc::invalid_argument,
                      "create_datagram_endpoints serves a port: no "
                      "remote_addr");
  if (count == 0)
    return make_error(sw_errc::invalid_argument, "count must be positive");
  opts.reuse_port = true;
  std::vector<datagram_endpoint> out;
  for (size_t i = 0; i < count; ++i) {
    opts.shard = i;
    auto ep = create_datagram_endpoint(rt, factory, opts);
    if (!ep) {
      for (auto& e : out)
        caf::anon_send(e.transport, shardwire::abort{});
      return ep.error();
    }
    if (i == 0) opts.local_addr->port = ep->info.sockname.port;
    out.push_back(std::move(*ep));
  }
  return out;
}

} // namespace shardwire
