// Records a history of random GET/SET operations against a kv_cluster front
// (demos/kv_cluster.cpp) for the linearizability checker (demos/lincheck,
// sim/linearizability.hpp). Test program of tests/distributed/
// run_kv_history.py; docs/distributed.md, "Checking a real cluster's
// history".
//
//   kv_history_client --port=P --out=FILE [--host=127.0.0.1] [--clients=4]
//                     [--keys=3] [--seconds=5] [--max-ops=0]
//                     [--reply-timeout-ms=500] [--seed=1]
//
// Each client is one thread with one blocking TCP connection (poll for
// every deadline) and one request in flight at a time. It picks a key of
// `hk0..hk<keys-1>` and a GET or a SET (half each); a SET writes a value
// no other operation writes ("c<client>-<n>"), so every value read names
// the write it came from. Every operation is recorded into one
// `sim::history` with `history::steady_now()` around it:
//   - a reply: `ok` (a GET's value, NIL = absent; OK for a SET);
//   - "ERR bad request" / "ERR line too long": `fail` (the front refused
//     the line before asking a node);
//   - any other ERR (timeout, node unavailable, ...): `unknown`, since the
//     node may have applied the request before the front gave up on it;
//   - no reply within --reply-timeout-ms, or a lost connection: `unknown`,
//     and the client closes the connection and connects again.
// A client that cannot connect retries every 20 ms until the run ends.
// At the end the history goes to --out as JSON lines and one summary line
// goes to stdout: "operations N ok N fail N unknown N reconnects N".
// Exit 0, or 1 for a refused option or an unwritable --out.
#include "actors/config.hpp"
#include "sim/history.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;
using clock_type = std::chrono::steady_clock;

namespace {

struct client_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string out;
  size_t clients = 4;
  size_t keys = 3;
  double seconds = 5;
  size_t max_ops = 0;
  size_t reply_timeout_ms = 500;
  uint64_t seed = 1;

  client_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "front address (IPv4)")
        .add(port, "port,p", "front port (required)")
        .add(out, "out", "file the history is written to (JSON lines)")
        .add(clients, "clients", "client connections, one thread each (1-64)")
        .add(keys, "keys", "keys hk0.. the clients share (1-1000)")
        .add(seconds, "seconds", "how long the clients run (0.01-3600)")
        .add(max_ops, "max-ops", "stop a client after N operations (0: none)")
        .add(reply_timeout_ms, "reply-timeout-ms",
             "a request without a reply after this long is unknown "
             "(1-600000)")
        .add(seed, "seed", "seed of the operation mix");
  }

  bool validate() const {
    in_addr addr{};
    bool ok = refuse_metrics_option(*this);
    ok &= check_option(inet_pton(AF_INET, host.c_str(), &addr) == 1, "host",
                       "expected an IPv4 address, got '" + host + "'");
    ok &= check_option(port != 0, "port", "must be 1-65535");
    ok &= check_option(!out.empty(), "out", "a file is required");
    ok &=
        check_option(clients >= 1 && clients <= 64, "clients", "must be 1-64");
    ok &= check_option(keys >= 1 && keys <= 1000, "keys", "must be 1-1000");
    ok &= check_option(seconds >= 0.01 && seconds <= 3600, "seconds",
                       "must be 0.01-3600");
    ok &= check_option(reply_timeout_ms >= 1 && reply_timeout_ms <= 600000,
                       "reply-timeout-ms", "must be 1-600000");
    return ok;
  }
};

struct counters {
  std::atomic<size_t> ok{0};
  std::atomic<size_t> fail{0};
  std::atomic<size_t> unknown{0};
  std::atomic<size_t> reconnects{0};
};

/// One blocking connection; every wait is bounded by a deadline.
class line_conn {
public:
  ~line_conn() { close(); }

  bool open() const { return fd_ >= 0; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }

  /// Connects (non-blocking connect, then poll) before `deadline`.
  bool connect(const sockaddr_in& addr, clock_type::time_point deadline) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr),
                  sizeof(addr)) == 0)
      return true;
    if (errno != EINPROGRESS || !wait(POLLOUT, deadline)) {
      close();
      return false;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close();
      return false;
    }
    return true;
  }

  /// Sends all of `data` before `deadline`.
  bool send_all(std::string_view data, clock_type::time_point deadline) {
    while (!data.empty()) {
      auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait(POLLOUT, deadline)) return false;
      } else {
        return false;
      }
    }
    return true;
  }

  /// The next line (without '\n'), or nothing at the deadline, at EOF or on
  /// an error.
  std::optional<std::string> read_line(clock_type::time_point deadline) {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      char chunk[4096];
      auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait(POLLIN, deadline)) return std::nullopt;
      } else {
        return std::nullopt; // EOF or reset
      }
    }
  }

private:
  bool wait(short events, clock_type::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - clock_type::now())
                      .count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  int fd_ = -1;
  std::string buf_;
};

void run_client(const client_config& cfg, const sockaddr_in& addr, uint64_t id,
                clock_type::time_point end, sim::history& h, counters& n) {
  std::mt19937_64 rng{cfg.seed * 1000003 + id};
  line_conn conn;
  auto timeout = std::chrono::milliseconds{cfg.reply_timeout_ms};
  uint64_t writes = 0;
  size_t ops = 0;
  bool connected_once = false;
  while (clock_type::now() < end && (cfg.max_ops == 0 || ops < cfg.max_ops)) {
    if (!conn.open()) {
      if (connected_once) ++n.reconnects;
      if (!conn.connect(addr, std::min(end, clock_type::now() + timeout))) {
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
        continue;
      }
      connected_once = true;
    }
    auto key = "hk" + std::to_string(rng() % cfg.keys);
    bool is_get = rng() % 2 == 0;
    sim::call c;
    std::string line;
    if (is_get) {
      c = sim::call::get(key);
      line = "GET " + key + "\n";
    } else {
      auto value = "c" + std::to_string(id) + "-" + std::to_string(writes++);
      c = sim::call::put(key, value);
      line = "SET " + key + " " + value + "\n";
    }
    ++ops;
    auto op = h.invoke(id, std::move(c), sim::history::steady_now());
    auto deadline = clock_type::now() + timeout;
    std::optional<std::string> reply;
    if (conn.send_all(line, deadline)) reply = conn.read_line(deadline);
    if (!reply) {
      // The request may have reached a node: its outcome stays unknown.
      h.complete_unknown(op);
      ++n.unknown;
      conn.close();
      continue;
    }
    auto now = sim::history::steady_now();
    if (*reply == "ERR bad request" || *reply == "ERR line too long") {
      h.complete_fail(op, now);
      ++n.fail;
    } else if (reply->rfind("ERR", 0) == 0) {
      // ERR timeout, ERR node unavailable, ...: the front gave up waiting,
      // the node may still have applied it.
      h.complete_unknown(op);
      ++n.unknown;
    } else if (is_get) {
      h.complete_ok(op,
                    *reply == "NIL" ? std::nullopt
                                    : std::optional<std::string>{*reply},
                    now);
      ++n.ok;
    } else if (*reply == "OK") {
      h.complete_ok(op, std::nullopt, now);
      ++n.ok;
    } else {
      // Not a reply to a SET: the stream is out of step; start over.
      h.complete_unknown(op);
      ++n.unknown;
      conn.close();
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  client_config cfg;
  if (auto rc = parse_args(cfg, argc, argv, [&] { return cfg.validate(); }))
    return *rc;
  std::ofstream out{cfg.out, std::ios::trunc};
  if (!out) {
    check_option(false, "out",
                 "cannot write '" + cfg.out + "': " + std::strerror(errno));
    return 1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(cfg.port);
  inet_pton(AF_INET, cfg.host.c_str(), &addr.sin_addr);
  sim::history h;
  counters n;
  auto end =
      clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                              std::chrono::duration<double>{cfg.seconds});
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < cfg.clients; ++i)
    threads.emplace_back([&, i] { run_client(cfg, addr, i + 1, end, h, n); });
  for (auto& t : threads)
    t.join();
  h.write_jsonl(out);
  out.flush();
  if (!out) {
    std::cerr << "error: --out: writing '" << cfg.out << "' failed\n";
    return 1;
  }
  std::cout << "operations " << h.size() << " ok " << n.ok << " fail " << n.fail
            << " unknown " << n.unknown << " reconnects " << n.reconnects
            << std::endl;
  return 0;
}
