// Datagram endpoint benchmarks (not run in CI; figures in docs/datagrams.md):
// 1. receive batching: datagrams/s a single-shard UDP endpoint delivers to
//    its protocol with recvmmsg (batch 16) and with plain recvfrom (batch
//    1), under a sender that floods it from another thread;
// 2. --echo: round trips/s through a shardwire UDP echo endpoint and through
//    a plain Asio UDP echo server in the same run (16 datagrams in flight);
//    with --rounds=N exactly N round trips, one in flight, shardwire only
//    (for callgrind: instructions per round trip = (Ir(2N) - Ir(N)) / N);
// 3. --send: datagrams/s a shardwire Unix datagram endpoint flushes from its
//    queue (the receiver lags, so sends meet EAGAIN and queue) with plain
//    sendto (send_batch 1) and with sendmmsg (send_batch 64).
//
//   udp_batch_bench [--seconds=2] [--size=64] [--batch=16] [--echo|--send]
//   valgrind --tool=callgrind udp_batch_bench --echo --rounds=20000
//
// Ctrl-C (or SIGTERM) ends it at once with exit code 1
// (bench/stop_signal.hpp).
#include "bench/option_checks.hpp"
#include "bench/stop_signal.hpp"
#include "bench/udp_echo.hpp"

#include "actors/config.hpp"
#include "actors/datagram_protocol.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "tools/metrics_endpoint.hpp"
#include "transports/udp.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <netinet/in.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
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
  size_t rounds = 0;
  bool send = false;
  size_t count = 200000;
  bench_config() {
    opt_group{custom_options_, "global"}
        .add(seconds, "seconds", "duration of each run")
        .add(size, "size", "datagram payload bytes")
        .add(batch, "batch", "recvmmsg batch of the second run")
        .add(echo, "echo", "round trips against shardwire and plain Asio")
        .add(rounds, "rounds",
             "--echo: exactly this many round trips, 1 in flight, shardwire "
             "only (0: timed runs)")
        .add(send, "send", "queued-send flush rate, sendto vs sendmmsg")
        .add(count, "count", "--send: datagrams per run");
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

// Exactly `n` round trips, one datagram in flight (deterministic work for
// callgrind).
void fixed_round_trips(uint16_t port, const bench_config& cfg, size_t n) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  std::vector<char> payload(cfg.size, 'x');
  std::vector<char> in(65536);
  for (size_t i = 0; i < n; ++i) {
    ::send(fd, payload.data(), payload.size(), 0);
    ::recv(fd, in.data(), in.size(), 0);
  }
  ::close(fd);
}

int run_echo(runtime& rt, const bench_config& cfg) {
  if (cfg.rounds == 0) {
    // The windowed measurement is shared with echo_bench --suite=udp
    // (bench/udp_echo.*): shardwire and plain Asio in the same run.
    std::vector<bench::udp_echo_result> rows;
    rows.push_back(bench::measure_udp_echo(rt, cfg.size,
                                           static_cast<double>(cfg.seconds)));
    bench::print_udp_echo(rows, static_cast<double>(cfg.seconds));
    rt.shutdown();
    return 0;
  }
  datagram_options opts;
  opts.local_addr = host_port{"127.0.0.1", 0};
  auto ep = create_datagram_endpoint(rt, datagram_protocol_fun(echoer), opts);
  if (!ep) {
    std::fprintf(stderr, "error: %s\n", describe(ep.error()).c_str());
    return 1;
  }
  fixed_round_trips(ep->info.sockname.port, cfg, cfg.rounds);
  std::printf("%zu round trips of %zu B done\n", cfg.rounds, cfg.size);
  caf::anon_send(ep->transport, shardwire::abort{});
  rt.shutdown();
  return 0;
}

// Datagrams/s the transport flushes from its queue: `cfg.count` sendto
// messages to a Unix datagram socket nobody reads yet (its receive queue
// holds net.unix.max_dgram_qlen datagrams), so almost all of them queue;
// then a reader drains them with recvmmsg and the drain is timed.
// User + system CPU seconds of this process (all threads).
double cpu_seconds() {
  rusage ru = {};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) +
           static_cast<double>(tv.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

double flush_rate(runtime& rt, const bench_config& cfg, size_t send_batch,
                  double& cpu_ns) {
  auto path = "/tmp/udp_batch_bench." + std::to_string(::getpid());
  ::unlink(path.c_str());
  int rx = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
  if (::bind(rx, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
    std::perror("bind");
    std::exit(1);
  }
  datagram_options opts;
  opts.remote_path = path;
  opts.send_batch = send_batch;
  auto ep = create_datagram_endpoint(rt, datagram_protocol_fun(counter), opts);
  if (!ep) {
    std::fprintf(stderr, "error: %s\n", describe(ep.error()).c_str());
    std::exit(1);
  }
  // All sendto messages first, from one sender, then a request from the
  // same sender: once it is answered every sendto was handled, and what the
  // kernel did not take is queued. Only the drain is timed, so the figure is
  // the flush path (plus the reader), not the mailbox.
  auto payload = buffer::copy_of(std::string(cfg.size, 'x'));
  caf::scoped_actor self{rt.system()};
  for (size_t i = 0; i < cfg.count; ++i)
    self->send(ep->transport, shardwire::sendto{payload, caf::none});
  uint64_t queued = 0;
  self->request(ep->transport, caf::infinite, get_write_buffer_size{})
      .receive([&](uint64_t n) { queued = n; },
               [&](caf::error& err) {
                 std::fprintf(stderr, "error: %s\n", describe(err).c_str());
                 std::exit(1);
               });
  if (queued < cfg.count * cfg.size / 2)
    std::fprintf(stderr, "warning: only %llu bytes queued\n",
                 static_cast<unsigned long long>(queued));
  auto t0 = std::chrono::steady_clock::now();
  auto cpu0 = cpu_seconds();
  constexpr size_t n = 64;
  std::vector<std::vector<char>> bufs(n, std::vector<char>(cfg.size + 1));
  std::vector<iovec> iovs(n);
  std::vector<mmsghdr> hdrs(n);
  for (size_t i = 0; i < n; ++i) {
    iovs[i] = iovec{bufs[i].data(), bufs[i].size()};
    hdrs[i] = mmsghdr{};
    hdrs[i].msg_hdr.msg_iov = &iovs[i];
    hdrs[i].msg_hdr.msg_iovlen = 1;
  }
  timeval tv{2, 0}; // a stall ends the run rather than hanging it
  ::setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  size_t got = 0;
  while (got < cfg.count) {
    int k = ::recvmmsg(rx, hdrs.data(), n, MSG_WAITFORONE, nullptr);
    if (k <= 0) break;
    got += static_cast<size_t>(k);
  }
  auto secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  auto cpu = cpu_seconds() - cpu0;
  caf::anon_send(ep->transport, shardwire::abort{});
  ::close(rx);
  ::unlink(path.c_str());
  if (got < cfg.count)
    std::fprintf(stderr, "warning: %zu of %zu datagrams arrived\n", got,
                 cfg.count);
  cpu_ns = cpu * 1e9 / static_cast<double>(got);
  return static_cast<double>(got) / secs;
}

int run_send(runtime& rt, const bench_config& cfg) {
  double single_cpu = 0;
  double batched_cpu = 0;
  auto single = flush_rate(rt, cfg, 1, single_cpu);
  auto batched = flush_rate(rt, cfg, 64, batched_cpu);
  std::printf("queued sends, payload %zu B, %zu datagrams per run\n", cfg.size,
              cfg.count);
  std::printf("sendto   (send_batch 1):  %10.0f datagrams/s, %5.0f ns CPU "
              "each (sender + reader)\n",
              single, single_cpu);
  std::printf("sendmmsg (send_batch 64): %10.0f datagrams/s, %5.0f ns CPU "
              "each (%.2fx rate, %.2fx CPU)\n",
              batched, batched_cpu, batched / single, batched_cpu / single_cpu);
  rt.shutdown();
  return 0;
}

} // namespace

// The largest UDP payload over IPv4; recvmmsg takes at most UIO_MAXIOV
// messages; --send queues count x size bytes in memory first.
constexpr size_t max_payload = 65507;
constexpr size_t max_batch = 1024;
constexpr size_t max_seconds = 86400;
constexpr size_t max_count = 10'000'000;
constexpr size_t max_queued = size_t{1} << 30;

int main(int argc, char** argv) {
  bench::stop_on_signal();
  bench_config cfg;
  auto valid = [&] {
    bool ok = bench::check_range(cfg.seconds, 1, max_seconds, "seconds");
    ok &= bench::check_range(cfg.size, 1, max_payload, "size", " bytes");
    ok &= bench::check_range(cfg.batch, 1, max_batch, "batch");
    ok &= bench::check_range(cfg.rounds, 0, 1'000'000'000, "rounds",
                             " (0: timed runs)");
    ok &= bench::check_range(cfg.count, 1, max_count, "count");
    if (ok && cfg.send)
      ok &= check_option(cfg.count * cfg.size <= max_queued, "count",
                         "--count x --size must stay within 1 GiB (all of "
                         "it is queued before the flush is timed)");
    ok &= check_option(!(cfg.echo && cfg.send), "send",
                       "runs alone: not together with --echo");
    return ok;
  };
  if (auto rc = parse_args(cfg, argc, argv, valid)) return *rc;
  runtime rt{cfg};
  auto metrics = serve_metrics_option(rt, cfg, [](std::string_view line) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  });
  if (!metrics) return 1;
  if (cfg.echo) return run_echo(rt, cfg);
  if (cfg.send) return run_send(rt, cfg);
  auto single = run_once(rt, cfg, 1);
  auto batched = run_once(rt, cfg, cfg.batch);
  std::printf("payload %zu B, 1 shard, %zu s per run\n", cfg.size, cfg.seconds);
  std::printf("recvfrom (batch 1):   %10.0f datagrams/s delivered\n", single);
  std::printf("recvmmsg (batch %zu): %10.0f datagrams/s delivered (%.2fx)\n",
              cfg.batch, batched, batched / single);
  rt.shutdown();
  return 0;
}
