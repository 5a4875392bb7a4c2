#include "bench/udp_echo.hpp"

#include "actors/datagram_protocol.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/udp.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <caf/send.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <memory>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace bench {

namespace {

using namespace shardwire;

datagram_protocol_actor::behavior_type
echoer(datagram_protocol_actor::pointer self) {
  auto t = std::make_shared<datagram_transport_actor>();
  return {
      [t](datagram_connected& msg) { *t = msg.transport; },
      [self, t](datagram& msg) {
        self->send(*t, shardwire::sendto{std::move(msg.bytes), msg.peer});
      },
      [](datagram_error&) {},
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self](lost&) { self->quit(); },
  };
}

// A plain Asio UDP echo server (the baseline), on its own thread.
struct asio_echo {
  asio::io_context io;
  asio::ip::udp::socket sock{
      io, asio::ip::udp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  asio::ip::udp::endpoint from;
  std::vector<char> buf = std::vector<char>(65536);
  void start() {
    sock.async_receive_from(
        asio::buffer(buf), from, [this](std::error_code ec, size_t n) {
          if (ec) return;
          sock.send_to(asio::buffer(buf.data(), n), from, 0, ec);
          start();
        });
  }
};

// Round trips/s with `window` datagrams in flight to 127.0.0.1:`port`.
double round_trips(uint16_t port, size_t size, double seconds, int window) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  timeval tv{0, 200 * 1000}; // a lost datagram refills the window
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<char> payload(size, 'x');
  std::vector<char> in(65536);
  uint64_t done = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto until = t0 + std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::duration<double>(seconds));
  for (int i = 0; i < window; ++i)
    ::send(fd, payload.data(), payload.size(), 0);
  while (std::chrono::steady_clock::now() < until) {
    if (::recv(fd, in.data(), in.size(), 0) < 0) {
      for (int i = 0; i < window; ++i)
        ::send(fd, payload.data(), payload.size(), 0);
      continue;
    }
    ++done;
    ::send(fd, payload.data(), payload.size(), 0);
  }
  auto secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  ::close(fd);
  return static_cast<double>(done) / secs;
}

} // namespace

udp_echo_result measure_udp_echo(shardwire::runtime& rt, size_t size,
                                 double seconds, int window) {
  udp_echo_result r;
  r.size = size;
  datagram_options opts;
  opts.local_addr = host_port{"127.0.0.1", 0};
  auto ep = create_datagram_endpoint(rt, datagram_protocol_fun(echoer), opts);
  if (!ep)
    throw std::runtime_error("UDP echo endpoint: " + describe(ep.error()));
  r.shardwire_per_s =
      round_trips(ep->info.sockname.port, size, seconds, window);
  caf::anon_send(ep->transport, shardwire::abort{});
  asio_echo base;
  base.start();
  std::thread io([&] { base.io.run(); });
  r.asio_per_s =
      round_trips(base.sock.local_endpoint().port(), size, seconds, window);
  base.io.stop();
  io.join();
  return r;
}

void print_udp_echo(const std::vector<udp_echo_result>& rows, double seconds,
                    int window) {
  std::printf("UDP echo: round trips/s, %d datagrams in flight, %.1f s per "
              "point\n",
              window, seconds);
  std::printf("%-14s %7s %14s %7s\n", "server", "size", "round trips/s",
              "ratio");
  for (auto& r : rows) {
    std::printf("%-14s %7zu %14.0f %7.2f\n", "asio", r.size, r.asio_per_s, 1.0);
    std::printf("%-14s %7zu %14.0f %7.2f\n", "shardwire", r.size,
                r.shardwire_per_s,
                r.asio_per_s > 0 ? r.shardwire_per_s / r.asio_per_s : 0.0);
  }
}

} // namespace bench
