// A small HTTP/1.1 server on shardwire's own TCP transports: for control
// APIs (chaos_proxy's Toxiproxy API, /metrics), not for the open internet's
// load. Requests are parsed by libhttp-parser (tools/http_request_parser.hpp).
//
// Each accepted connection is one pinned protocol actor on the shard that
// owns its socket. Per connection:
// - requests are answered strictly in order, one at a time: while a request
//   is with the handler, later (pipelined) bytes stay buffered, and reading
//   pauses once that buffer passes 64 KiB (it may hold one read more);
// - HTTP/1.1 keep-alive, HTTP/1.0 (keep-alive only if asked for), and
//   "Connection: close" (the connection closes once the response is
//   flushed);
// - "Expect: 100-continue" is answered "100 Continue" once the headers are
//   accepted (a body too large is answered 413 instead, unread);
// - errors are answered with a JSON body {"error": "...", "status": N}
//   (application/json) and then the connection closes: 400 malformed, 408
//   request not complete within `request_timeout`, 413 body too large, 431
//   headers too large, 505 HTTP version not 1.x;
// - a handler that throws is answered 500 (same JSON) and the connection
//   carries on;
// - an idle keep-alive connection is closed after `idle_timeout`;
// - closing, the server flushes, half-closes (FIN) and reads and drops what
//   the peer still sends until it closes too, for at most 2 s or 1 MiB, so
//   that a reset does not destroy the last response before the peer read
//   it (a client still sending a refused body, say);
// - every response carries Content-Length; HEAD is answered like GET
//   without the body (the handler sees method "HEAD");
// - no protocol upgrades: an Upgrade or CONNECT request goes to the handler
//   like any other, and the connection closes after its answer.
// Nothing a peer sends ends the process: the worst is a closed connection.
#pragma once

#include "actors/endpoint.hpp"
#include "actors/messages.hpp"
#include "tools/http_message.hpp"

#include <caf/actor_addr.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace shardwire {

class runtime;

namespace detail {
class http_connection;
} // namespace detail

struct http_server_options {
  std::string host = "127.0.0.1";
  /// 0 picks a free port (see `http_server::address`).
  uint16_t port = 0;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  /// A request that has begun must be complete (headers and body) within
  /// this time, or it is answered 408 and the connection closes (slow
  /// clients). The time with the handler does not count. 0: no limit.
  std::chrono::milliseconds request_timeout{10000};
  /// A keep-alive connection with no request for this long is closed.
  /// 0: no limit.
  std::chrono::milliseconds idle_timeout{60000};
};

/// Completes one request, exactly once. Move-only.
///
/// Callable from any thread: it sends the response to the connection's
/// actor, which writes it on the connection's shard. Destroying it without
/// calling it answers 500 ("the handler dropped the request"). If the
/// connection is gone by then (peer closed, server stopped), calling or
/// destroying it does nothing. A response sent after the request was
/// already answered (the handler threw, and the connection answered 500)
/// is dropped.
class http_responder {
public:
  /// An empty responder (owes nothing).
  http_responder() noexcept = default;
  http_responder(http_responder&& other) noexcept;
  /// An uncalled responder being overwritten answers 500 first.
  http_responder& operator=(http_responder&& other) noexcept;
  http_responder(const http_responder&) = delete;
  http_responder& operator=(const http_responder&) = delete;
  ~http_responder();

  /// Sends `res` as the answer; the responder is empty afterwards. A no-op
  /// on an empty responder.
  void operator()(http_response res) &&;

  /// The same as `std::move(*this)(std::move(res))`.
  void send(http_response res) && {
    std::move(*this).operator()(std::move(res));
  }

  /// Whether this responder still owes its request an answer.
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

private:
  friend class detail::http_connection;
  http_responder(caf::actor_addr conn, uint64_t seq) noexcept
      : conn_(std::move(conn)), seq_(seq) {}

  caf::actor_addr conn_;
  uint64_t seq_ = 0;
};

/// Handles one request. Called on the connection's shard thread, so it must
/// not block; it may be called concurrently on several shards (one call per
/// connection at a time). It answers through the responder, at once or
/// later from any thread. An exception it throws is answered 500.
using http_handler = std::function<void(http_request, http_responder)>;

/// A handler from a synchronous function `fn` (run on the shard thread, so
/// it must not block). An exception from `fn` is answered 500.
http_handler
http_sync_handler(std::function<http_response(const http_request&)> fn);

/// The JSON body of shardwire's error responses:
/// {"error": message, "status": status}, with `message` made valid UTF-8.
http_response http_error_response(int status, std::string_view message);

/// A running server. Move-only handle; usable from any thread except where
/// noted.
class http_server {
public:
  /// Listens on `opts.host:opts.port` and serves with `handler`.
  /// Errors: those of `create_server` (EADDRINUSE, sw_errc::unknown_host
  /// ...), sw_errc::invalid_argument for an empty handler or a zero
  /// max_header_bytes.
  /// Resolves the host: call it at startup or from a non-shard thread.
  static caf::expected<http_server> start(runtime& rt, http_server_options opts,
                                          http_handler handler);

  http_server() = default;
  http_server(http_server&& other) noexcept;
  http_server& operator=(http_server&& other) noexcept;
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  /// Calls `stop`. Destroy the handle before its runtime.
  ~http_server();

  /// The bound address (the port resolved when 0 was asked).
  const endpoint& address() const noexcept { return address_; }

  /// Stops accepting and closes every connection (responses already
  /// queued are flushed; requests still with a handler go unanswered).
  /// Idempotent; returns without waiting for the connections to end.
  void stop();

  explicit operator bool() const noexcept { return static_cast<bool>(server_); }

private:
  server_actor server_;
  endpoint address_;
};

} // namespace shardwire
