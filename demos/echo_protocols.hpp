// The asyncio documentation's echo server and client protocols, shared by
// the plain demos (tcp_echo_server, tcp_echo_client) and the TLS ones
// (tls_echo_server, tls_echo_client): the same callbacks print the same
// lines whatever carries the bytes.
//
// Everything here runs on the shard of its connection; `exchange_state` is
// the one piece shared with main's thread.
#pragma once

#include "demos/print.hpp"

#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>

namespace demo {

// -- server -------------------------------------------------------------------

/// Prints "Connection from (host, port)" unless quiet.
inline void greet(shardwire::transport_ref& t, bool quiet) {
  if (!quiet)
    println("Connection from ", shardwire::python_repr(t.info().peername));
}

/// The documentation's echo: the first chunk back, then close (or, when
/// persistent, every chunk back).
inline void echo(shardwire::transport_ref& t, const shardwire::buffer& bytes,
                 bool persistent, bool quiet) {
  if (persistent) {
    t.write(bytes); // the same storage goes back out: no copy
    return;
  }
  if (!quiet) {
    println("Data received: ", py_repr(bytes.view()));
    println("Send: ", py_repr(bytes.view()));
  }
  t.write(bytes);
  if (!quiet) println("Close the client socket");
  t.close();
}

class echo_server_protocol : public shardwire::protocol {
public:
  echo_server_protocol(bool persistent, bool quiet)
      : persistent_(persistent), quiet_(quiet) {}

  void connection_made(shardwire::transport_ref& t) override {
    greet(t, quiet_);
  }

  void data_received(const shardwire::buffer& bytes) override {
    echo(transport(), bytes, persistent_, quiet_);
  }

protected:
  bool persistent_;
  bool quiet_;
};

// -- client -------------------------------------------------------------------

/// Shared by main and the client protocol, which may outlive main's wait.
struct exchange_state {
  std::promise<void> done;
  /// Set by main when --timeout-ms passed: the connection then ends at
  /// shutdown, and that end is not the exchange's outcome to print.
  std::atomic<bool> gave_up{false};
  /// Set by the protocol when the connection ended with an error (before
  /// `done`): programs that report such an end by their exit code read it.
  std::atomic<bool> failed{false};
  /// That error, if not reported yet; written before `done` is set, read
  /// by main after it.
  caf::error reason;
};

using done_promise = std::shared_ptr<exchange_state>;

/// Sends the message once the connection is up, prints what comes back,
/// and fulfils `done` when the connection ends.
class echo_client_protocol : public shardwire::protocol {
public:
  echo_client_protocol(std::string message, done_promise done)
      : message_(std::move(message)), done_(std::move(done)) {}

  void connection_made(shardwire::transport_ref&) override { send_message(); }

  void data_received(const shardwire::buffer& bytes) override {
    println("Data received: ", py_repr(bytes.view()));
  }

  void connection_lost(const caf::error& reason) override {
    if (done_->gave_up.load()) {
      // main already reported the timeout.
    } else if (reason) {
      println("The connection failed: ", shardwire::describe(reason));
    } else {
      println("The server closed the connection");
    }
    if (reason) {
      done_->reason = reason;
      done_->failed = true;
    }
    done_->done.set_value();
  }

protected:
  void send_message() {
    transport().write(message_);
    println("Data sent: ", py_repr(message_));
  }

  std::string message_;
  done_promise done_;
};

/// Waits for the exchange to end, at most until `deadline`; returns the
/// exit code. `peer` and `timeout_ms` name what the error lines report.
/// On a timeout or a stop signal the runtime is shut down here (which
/// closes the connection) and the code is 1.
inline int finish_exchange(shardwire::runtime& rt, exchange_state& state,
                           std::future<void>& finished,
                           std::chrono::steady_clock::time_point deadline,
                           const std::string& peer, size_t timeout_ms) {
  using shardwire::runtime;
  switch (runtime::wait_or_stop(finished, deadline)) {
  case runtime::wait_end::ready:
    return 0;
  case runtime::wait_end::timeout:
    state.gave_up = true;
    eprintln("error: ", peer, " did not finish the exchange within ",
             timeout_ms, " ms (--timeout-ms)");
    break;
  case runtime::wait_end::stop_requested:
    state.gave_up = true;
    eprintln("error: interrupted before the exchange finished");
    break;
  }
  rt.shutdown(); // closes the connection
  return 1;
}

} // namespace demo
