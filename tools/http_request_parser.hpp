// An incremental HTTP/1.x request parser over Debian's libhttp-parser (the
// C parser node.js used): the bytes of a connection go in, one request at
// a time comes out, or the status an error must be answered with.
//
// Pure: no threads, no actors, no I/O. One parser per connection; not
// thread-safe (use it from one thread at a time). It never throws except
// std::bad_alloc, and is safe on any byte input (tests/fuzz/
// fuzz_http_request.cpp).
//
// One request at a time: once a request is complete, `feed` consumes
// nothing more until `next` took it, so the bytes of pipelined requests
// stay with the caller (its buffer) while the first one is being answered.
#pragma once

#include "tools/http_message.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace shardwire {

/// Bounds on what one request may make the parser hold.
struct http_limits {
  /// Request line plus header lines, CRLFs included (and any empty lines
  /// before the request line). More is answered 431. libhttp-parser has
  /// its own bound (80 KiB), also answered 431.
  size_t max_header_bytes = 16 * 1024;
  /// Decoded body bytes. More is answered 413: for Content-Length as soon
  /// as the headers are in (before any body byte arrives), for chunked
  /// bodies as soon as the chunks pass it.
  size_t max_body_bytes = 1024 * 1024;
};

/// Why parsing failed, and what to answer: 400 malformed (including an
/// HTTP/1.1 request without Host), 413 body too large, 431 headers too
/// large, 505 HTTP version other than 1.x.
struct http_parse_error {
  int status = 400;
  /// Short English description, for the error response and the logs.
  std::string message;
};

class http_request_parser {
public:
  enum class state {
    /// Everything fed was consumed; a request may be partly in.
    need_more,
    /// A request is complete: take it with `next`.
    request_ready,
    /// The input is not acceptable (see `error`); final.
    failed,
    /// The last request said it is the last (Connection: close, HTTP/1.0
    /// without keep-alive, an Upgrade): nothing more is parsed; final.
    done,
  };

  explicit http_request_parser(http_limits limits = {});
  ~http_request_parser();
  http_request_parser(http_request_parser&&) noexcept;
  http_request_parser& operator=(http_request_parser&&) noexcept;

  /// Parses a prefix of `bytes` and returns its length (at most
  /// `bytes.size()`). Stops after the end of a request (the rest is the
  /// caller's to feed again after `next`) and at an error. In state
  /// need_more everything is consumed; in the other states nothing is.
  size_t feed(std::string_view bytes);

  /// Takes the completed request (state request_ready), or nullopt. Then
  /// the state is need_more again, or done if that request was the last.
  std::optional<http_request> next();

  state current_state() const noexcept;

  /// Why the state is failed (unspecified otherwise).
  const http_parse_error& error() const noexcept;

  /// A request has begun (its first byte other than an empty line was
  /// consumed) and is not complete yet.
  bool in_progress() const noexcept;

  /// True once per request that sent "Expect: 100-continue" with a body
  /// still to come, as soon as its headers are in and accepted: the
  /// caller answers "100 Continue" then. Not set when the body is refused
  /// (413) or already complete.
  bool take_continue() noexcept;

  const http_limits& limits() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace shardwire
