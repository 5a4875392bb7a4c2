#include "transports/unix.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/connector.hpp"
#include "transports/detail/listener.hpp"
#include "transports/detail/socket_util.hpp"

#include <cerrno>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardwire {

void async_create_unix_connection(runtime& rt, std::string path,
                                  protocol_factory factory,
                                  connect_callback done,
                                  std::chrono::milliseconds timeout,
                                  tls_params tls) {
  // A path the kernel cannot take (too long, empty) is the caller's error
  // now, not an exception on the shard later (found by the edge-value
  // harness: a 5,000-byte path never answered).
  if (auto addr = detail::unix_address(path); !addr) {
    if (done) done(std::move(addr.error()));
    return;
  }
  auto settings = stream_settings::from(rt);
  settings.tls = std::move(tls);
  detail::start_unix_connect(rt.pick_shard(), std::move(path), timeout,
                             std::move(factory), std::move(settings),
                             std::move(done));
}

caf::expected<connection>
create_unix_connection(runtime& rt, std::string path, protocol_factory factory,
                       std::chrono::milliseconds timeout, tls_params tls) {
  return await_connection([&](connect_callback cb) {
    async_create_unix_connection(rt, path, factory, std::move(cb), timeout,
                                 tls);
  });
}

namespace {

// Removes `path` if it is a socket nobody accepts on. Returns an error if
// the path is in use or is not a socket.
caf::error remove_stale_socket(const std::string& path, const sockaddr* sa,
                               socklen_t len) {
  struct stat st = {};
  if (::lstat(path.c_str(), &st) != 0) return {}; // nothing there
  if (!S_ISSOCK(st.st_mode))
    return make_errno_error(EADDRINUSE, path + " exists and is not a socket");
  // The probe is non-blocking: a blocking connect() to a live server whose
  // accept queue is full waits until that server accepts, i.e. possibly
  // forever (found by unix_test: "a live server with a full accept queue").
  // EAGAIN means exactly that case: the path is in use.
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return make_errno_error(errno, "socket");
  int rc = ::connect(probe, sa, len);
  int err = errno;
  detail::close_fd(probe);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
    return make_errno_error(EADDRINUSE, "a server is listening on " + path);
  if (err == ECONNREFUSED || err == ENOENT) {
    ::unlink(path.c_str());
    return {};
  }
  return make_errno_error(err, "probing " + path);
}

} // namespace

caf::expected<server> create_unix_server(runtime& rt, protocol_factory factory,
                                         unix_server_options opts) {
  if (!factory)
    return make_error(sw_errc::invalid_argument, "no protocol factory");
  auto addr = detail::unix_address(opts.path);
  if (!addr) return addr.error();
  auto* sa = reinterpret_cast<const sockaddr*>(&addr->first);
  bool abstract = opts.path[0] == '@' || opts.path[0] == '\0';
  if (!abstract)
    if (auto err = remove_stale_socket(opts.path, sa, addr->second)) return err;
  detail::listen_options lo{opts.backlog, false, false};
  auto fd = detail::listen_on(sa, addr->second, lo, opts.path);
  if (!fd) return fd.error();
  std::vector<detail::listener_socket> socks;
  socks.push_back(detail::listener_socket{
      *fd, detail::local_endpoint(*fd), abstract ? std::string{} : opts.path});
  server result;
  result.sockets.push_back(socks.front().address);
  auto settings = stream_settings::from(rt);
  settings.reads_follow_writes = opts.reads_follow_writes;
  settings.tls = opts.tls;
  detail::listener_settings ls{"unix", opts.backlog, opts.start_serving,
                               settings};
  auto& home = rt.shard_at(opts.listener_shard % rt.shard_count());
  result.actor = spawn_on<detail::listener>(home, &rt, std::move(socks),
                                            std::move(factory), std::move(ls));
  return result;
}

} // namespace shardwire
