// The baseline: the classic Asio echo server, nothing shardwire in it.
#include "bench/servers.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/signal_set.hpp>
#include <asio/write.hpp>

#include <array>
#include <memory>
#include <unistd.h>

namespace bench {

namespace {

class session : public std::enable_shared_from_this<session> {
public:
  explicit session(asio::ip::tcp::socket sock) : sock_(std::move(sock)) {}

  void start() { do_read(); }

private:
  void do_read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(buf_),
                          [this, self](std::error_code ec, size_t n) {
                            if (!ec) do_write(n);
                          });
  }

  void do_write(size_t n) {
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(buf_.data(), n),
                      [this, self](std::error_code ec, size_t) {
                        if (!ec) do_read();
                      });
  }

  asio::ip::tcp::socket sock_;
  std::array<char, 16 * 1024> buf_;
};

void do_accept(asio::ip::tcp::acceptor& acc) {
  acc.async_accept([&acc](std::error_code ec, asio::ip::tcp::socket sock) {
    if (!ec) {
      sock.set_option(asio::ip::tcp::no_delay(true));
      std::make_shared<session>(std::move(sock))->start();
    }
    do_accept(acc);
  });
}

} // namespace

int run_asio_server(int ready_fd, size_t) {
  asio::io_context io{1};
  asio::ip::tcp::acceptor acc{
      io, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  acc.listen(1024);
  uint16_t port = acc.local_endpoint().port();
  if (::write(ready_fd, &port, sizeof(port)) != sizeof(port)) return 1;
  ::close(ready_fd);
  asio::signal_set signals{io, SIGTERM, SIGINT};
  signals.async_wait([&](std::error_code, int) { io.stop(); });
  do_accept(acc);
  io.run();
  return 0;
}

} // namespace bench
