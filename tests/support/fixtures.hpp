// Test support: a runtime with two shards, a recording protocol actor, raw
// blocking peers with timeouts, and leak checks.
//
// Tests synchronise on messages and futures (event_log::wait_for), never on
// sleeps; every wait has a deadline so an I/O bug fails instead of hanging.
#pragma once

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/protocol.hpp"
#include "runtime/pinned.hpp"
#include "runtime/runtime.hpp"
#include "transports/stream.hpp"

#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shardwire::test {

using namespace std::chrono_literals;

/// Default deadline of every wait in the tests.
constexpr auto deadline = 10s;

/// Number of open file descriptors of this process.
size_t open_fd_count();

/// A config for tests: `shards` shards, quiet logs unless SHARDWIRE_LOG set.
struct test_config : config {
  explicit test_config(size_t n_shards = 2);
};

/// A runtime with two shards. The destructor shuts it down and checks that
/// no pinned actor is left and no descriptor leaked.
struct runtime_fixture {
  explicit runtime_fixture(size_t n_shards = 2);
  /// `tweak` adjusts the configuration before the runtime starts.
  runtime_fixture(size_t n_shards,
                  const std::function<void(test_config&)>& tweak);
  ~runtime_fixture();

  size_t fds_before;
  /// The orphan guard ran before this fixture (its pipe is no leak).
  bool guard_before;
  test_config cfg;
  std::unique_ptr<runtime> rt;
};

/// A thread-safe list of event strings with blocking waits.
class event_log {
public:
  void add(std::string ev);
  std::vector<std::string> events() const;
  /// Waits until `pred(events)` holds; false on deadline.
  bool
  wait_for(const std::function<bool(const std::vector<std::string>&)>& pred,
           std::chrono::milliseconds timeout = deadline);
  /// Waits until an event equal to `ev` (or starting with it, if `prefix`) was
  /// logged.
  bool wait_for_event(const std::string& ev, bool prefix = false,
                      std::chrono::milliseconds timeout = deadline);
  /// Concatenation of the payloads of every "data:" event.
  std::string received() const;
  size_t count(const std::string& ev, bool prefix = false) const;

  /// Thread ids seen by the protocol (for pinning checks).
  void add_thread(std::thread::id id);
  std::vector<std::thread::id> threads() const;

private:
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
  std::vector<std::thread::id> threads_;
};

using event_log_ptr = std::shared_ptr<event_log>;

/// How a recording protocol behaves.
struct recorder_options {
  /// Reply to `eof`: true keeps the transport half-open.
  bool keep_open_on_eof = false;
  /// Write every received chunk back.
  bool echo = false;
  /// Send `pause_reading` from the `connected` handler.
  bool pause_in_connected = false;
  /// Throw from the data handler (the actor dies with an error).
  bool throw_on_data = false;
  /// Milliseconds to spin in each data handler (a deliberately slow protocol).
  int slow_ms = 0;
};

/// Logs "connected", "data:<bytes>", "eof", "pause", "resume",
/// "lost" / "lost:<error>" in the order it handles them, and remembers its
/// transport in `transport` (valid once "connected" is logged).
struct recorder_state {
  event_log_ptr log;
  recorder_options opts;
  std::shared_ptr<transport_actor> transport_out;
};

/// A protocol factory for a recording protocol.
protocol_factory
recorder(event_log_ptr log, recorder_options opts = {},
         std::shared_ptr<transport_actor> transport_out = nullptr);

// -- raw blocking peers
// ---------------------------------------------------------

/// A plain listening TCP socket on 127.0.0.1:0.
struct raw_listener {
  raw_listener();
  ~raw_listener();
  uint16_t port() const;
  /// Accepts one connection (deadline bounded); returns the fd or -1.
  int accept_one(std::chrono::milliseconds timeout = deadline);
  int fd = -1;
};

/// Connects a blocking TCP socket to 127.0.0.1:`port`; returns the fd.
int raw_connect(uint16_t port);

/// Sends everything; false on error.
bool raw_send_all(int fd, std::string_view bytes);

/// Reads until `n` bytes arrived, EOF or the deadline.
std::string raw_read_exact(int fd, size_t n,
                           std::chrono::milliseconds timeout = deadline);

/// Reads until EOF (or error / deadline); `eof_seen` tells which.
std::string raw_read_to_eof(int fd, bool* eof_seen = nullptr,
                            std::chrono::milliseconds timeout = deadline);

/// Closes `fd` with SO_LINGER 0 so the peer sees a reset.
void raw_reset(int fd);

/// Closes `fd`.
void raw_close(int fd);

/// Returns the result of a blocking request to `hdl` from a scoped actor.
template <class Result, class Handle, class Message>
caf::expected<Result> ask(runtime& rt, const Handle& hdl, Message msg) {
  caf::scoped_actor self{rt.system()};
  caf::expected<Result> result{caf::error{}};
  self->request(hdl, std::chrono::seconds(10), std::move(msg))
      .receive([&](Result& x) { result = std::move(x); },
               [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace shardwire::test
