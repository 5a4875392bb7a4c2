// The baseline: the classic Asio echo server, nothing shardwire in it. With
// more than one thread, one io_context per thread and the connections dealt
// out round-robin (the multi-core baseline for shard scaling).
#include "bench/servers.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/signal_set.hpp>
#include <asio/write.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <thread>
#include <unistd.h>
#include <vector>

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

// Accepts on the first io_context and hands each connection to the next
// io_context in turn (its own thread), where it stays.
class acceptor_loop {
public:
  acceptor_loop(asio::ip::tcp::acceptor& acc,
                std::vector<std::unique_ptr<asio::io_context>>& ios)
      : acc_(acc), ios_(ios) {}

  void start() {
    acc_.async_accept([this](std::error_code ec, asio::ip::tcp::socket sock) {
      if (!ec) hand_over(std::move(sock));
      start();
    });
  }

private:
  void hand_over(asio::ip::tcp::socket sock) {
    sock.set_option(asio::ip::tcp::no_delay(true));
    auto& io = *ios_[next_++ % ios_.size()];
    if (&io == &acc_.get_executor().context()) {
      std::make_shared<session>(std::move(sock))->start();
      return;
    }
    // The socket moves to the other io_context's reactor: its native
    // handle is released here and adopted there.
    auto proto = sock.local_endpoint().protocol();
    auto fd = sock.release();
    asio::post(io, [&io, proto, fd] {
      asio::ip::tcp::socket moved{io, proto, fd};
      std::make_shared<session>(std::move(moved))->start();
    });
  }

  asio::ip::tcp::acceptor& acc_;
  std::vector<std::unique_ptr<asio::io_context>>& ios_;
  size_t next_ = 0;
};

} // namespace

int run_asio_server(int ready_fd, size_t threads) {
  threads = std::max<size_t>(threads, 1);
  // One io_context per thread (concurrency hint 1: each is run by one
  // thread only), as shardwire runs one per shard.
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (size_t i = 0; i < threads; ++i)
    ios.push_back(std::make_unique<asio::io_context>(1));
  auto& io = *ios.front();
  asio::ip::tcp::acceptor acc{
      io, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  acc.listen(1024);
  uint16_t port = acc.local_endpoint().port();
  if (::write(ready_fd, &port, sizeof(port)) != sizeof(port)) return 1;
  ::close(ready_fd);
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>>
      guards;
  for (auto& x : ios)
    guards.push_back(asio::make_work_guard(*x));
  asio::signal_set signals{io, SIGTERM, SIGINT};
  signals.async_wait([&](std::error_code, int) {
    for (auto& x : ios)
      x->stop();
  });
  acceptor_loop accepting{acc, ios};
  accepting.start();
  std::vector<std::thread> workers;
  for (size_t i = 1; i < threads; ++i)
    workers.emplace_back([&x = *ios[i]] { x.run(); });
  io.run();
  for (auto& w : workers)
    w.join();
  return 0;
}

} // namespace bench
