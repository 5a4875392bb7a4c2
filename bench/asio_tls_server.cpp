// The TLS baseline: the classic Asio echo server of bench/asio_server.cpp
// over asio::ssl::stream<tcp::socket>, nothing shardwire in it. One
// io_context on this thread; per connection a handshake, then
// async_read_some + async_write with a 16 KiB buffer, and at the peer's
// close_notify an async_shutdown (our close_notify) before the socket
// closes, as shardwire's TLS transport does.
//
// Its ssl::context gets what shardwire's server context gets from
// make_tls_context (transports/tls/context.cpp) where the two would
// otherwise differ: TLS 1.2 at least, no renegotiation, no compression,
// read-ahead on. Asio's engine adds SSL_MODE_RELEASE_BUFFERS and partial
// writes per connection itself; cipher suites and session tickets are
// OpenSSL's defaults on both.
#include "bench/servers.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>

#include <array>
#include <memory>
#include <unistd.h>

namespace bench {

namespace {

using ssl_socket = asio::ssl::stream<asio::ip::tcp::socket>;

class tls_session : public std::enable_shared_from_this<tls_session> {
public:
  tls_session(asio::ip::tcp::socket sock, asio::ssl::context& ctx)
      : stream_(std::move(sock), ctx) {}

  void start() {
    auto self = shared_from_this();
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [this, self](std::error_code ec) {
                              if (!ec) do_read();
                            });
  }

private:
  void do_read() {
    auto self = shared_from_this();
    stream_.async_read_some(
        asio::buffer(buf_), [this, self](std::error_code ec, size_t n) {
          if (!ec) {
            do_write(n);
          } else if (ec == asio::error::eof) {
            // The peer's close_notify: answer with ours.
            stream_.async_shutdown([self](std::error_code) {});
          }
        });
  }

  void do_write(size_t n) {
    auto self = shared_from_this();
    asio::async_write(stream_, asio::buffer(buf_.data(), n),
                      [this, self](std::error_code ec, size_t) {
                        if (!ec) do_read();
                      });
  }

  ssl_socket stream_;
  std::array<char, 16 * 1024> buf_;
};

class acceptor_loop {
public:
  acceptor_loop(asio::ip::tcp::acceptor& acc, asio::ssl::context& ctx)
      : acc_(acc), ctx_(ctx) {}

  void start() {
    acc_.async_accept([this](std::error_code ec, asio::ip::tcp::socket sock) {
      if (!ec) {
        sock.set_option(asio::ip::tcp::no_delay(true));
        std::make_shared<tls_session>(std::move(sock), ctx_)->start();
      }
      start();
    });
  }

private:
  asio::ip::tcp::acceptor& acc_;
  asio::ssl::context& ctx_;
};

} // namespace

int run_asio_tls_server(int ready_fd, const server_tls& tls) {
  asio::io_context io{1};
  asio::ssl::context ctx{asio::ssl::context::tls_server};
  std::error_code ec;
  auto* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_read_ahead(native, 1);
  ctx.use_certificate_chain_file(tls.cert_file, ec);
  if (!ec) ctx.use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
  if (ec) return 1;
  asio::ip::tcp::acceptor acc{
      io, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  acc.listen(1024);
  uint16_t port = acc.local_endpoint().port();
  if (::write(ready_fd, &port, sizeof(port)) != sizeof(port)) return 1;
  ::close(ready_fd);
  asio::signal_set signals{io, SIGTERM, SIGINT};
  signals.async_wait([&](std::error_code, int) { io.stop(); });
  acceptor_loop accepting{acc, ctx};
  accepting.start();
  io.run();
  return 0;
}

} // namespace bench
