// Datagram endpoint benchmarks (not run in CI; figures in docs/datagrams.md):
// 1. receive batching: datagrams/s a single-shard UDP endpoint delivers to
//    its protocol with recvmmsg (batch 16) and with plain recvfrom (batch
//    1), under a sender that floods it from another thread;
// 2. --echo: round trips/s through a shardwire UDP echo endpoint and through
//    a plain Asio UDP echo server in the same run (16 datagrams in flight).
//
//   udp_batch_bench [--seconds=2] [--size=64] [--batch=16] [--echo]
#include "bench/udp_echo.hpp"

#include "actors/config.hpp"
#include "actors/datagram_protocol.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/udp.hpp"

#include <caf/send.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace shardwire;

namespace {

struct bench_config : config {
  size_t seconds = 2;
  size_t size = 64;
  size_t batch = 16;
  bool echo = false;
  bench_config() {
    opt_group{custom_options_, "global"}
        .add(seconds, "seconds", "duration of each run")
        .add(size, "size", "datagram payload bytes")
        .add(batch, "batch", "recvmmsg batch of the second run")
        .add(echo, "echo", "round trips against shardwire and plain Asio");
    shards = 1;
  }
};

std::atomic<uint64_t> received{0};

datagram_protocol_actor::behavior_type
counter(datagram_protocol_actor::pointer self) {
  return {
      [](datagram_connected&) {},
      [](datagram&) { received.fetch_add(1, std::memory_order_relaxed); },
      [](datagram_error&) {},
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self](lost&) { self->quit(); },
  };
}

double run_once(runtime& rt, const bench_config& cfg, size_t batch) {
  datagram_options opts;
  opts.local_addr = host_port{"127.0.0.1", 0};
  opts.recv_batch = batch;
  auto ep = create_datagram_endpoint(rt, datagram_protocol_fun(counter), opts);
  if (!ep) {
    std::fprintf(stderr, "error: %s\n", describe(ep.error()).c_str());
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(ep->info.sockname.port);
    std::vector<char> payload(cfg.size, 'x');
    constexpr size_t n = 32;
    mmsghdr hdrs[n] = {};
    iovec iov{payload.data(), payload.size()};
    for (auto& h : hdrs) {
      h.msg_hdr.msg_name = &a;
      h.msg_hdr.msg_namelen = sizeof(a);
      h.msg_hdr.msg_iov = &iov;
      h.msg_hdr.msg_iovlen = 1;
    }
    while (!stop.load(std::memory_order_relaxed))
      ::sendmmsg(fd, hdrs, n, 0);
    ::close(fd);
  });
  // Warm up, then count over the measured window.
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  auto before = received.load();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds{cfg.seconds});
  auto got = received.load() - before;
  auto secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  stop = true;
  sender.join();
  caf::anon_send(ep->transport, shardwire::abort{});
  return static_cast<double>(got) / secs;
}

int run_echo(runtime& rt, const bench_config& cfg) {
  // The measurement is shared with echo_bench --suite=udp (bench/udp_echo.*).
  std::vector<bench::udp_echo_result> rows;
  rows.push_back(
      bench::measure_udp_echo(rt, cfg.size, static_cast<double>(cfg.seconds)));
  bench::print_udp_echo(rows, static_cast<double>(cfg.seconds));
  rt.shutdown();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  bench_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  if (cfg.echo) return run_echo(rt, cfg);
  auto single = run_once(rt, cfg, 1);
  auto batched = run_once(rt, cfg, cfg.batch);
  std::printf("payload %zu B, 1 shard, %zu s per run\n", cfg.size, cfg.seconds);
  std::printf("recvfrom (batch 1):   %10.0f datagrams/s delivered\n", single);
  std::printf("recvmmsg (batch %zu): %10.0f datagrams/s delivered (%.2fx)\n",
              cfg.batch, batched, batched / single);
  rt.shutdown();
  return 0;
}
