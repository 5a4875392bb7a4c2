// The request and response values of shardwire's small HTTP/1.1 server
// (tools/http_server.hpp), shared by the server, the request parser and the
// applications behind it (chaos_proxy's Toxiproxy API, /metrics).
//
// Pure values: no threads, no actors; copy and move them freely.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardwire {

/// One parsed HTTP/1.x request. Header names keep the case the client sent;
/// look them up with `header`, which ignores case.
struct http_request {
  /// "GET", "POST", "PATCH", "DELETE", ... as the parser names it.
  std::string method;
  /// The request target as sent: path plus an optional "?query".
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body (Content-Length or chunked, decoded); empty if none.
  std::string body;
  unsigned short http_major = 1;
  unsigned short http_minor = 1;
  /// False when the client asked to close after this request (HTTP/1.0
  /// without keep-alive, or "Connection: close").
  bool keep_alive = true;

  /// The path part of `target` (before '?').
  std::string_view path() const noexcept {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
  }

  /// The value of the first header named `name` (ASCII case-insensitive);
  /// empty if there is none.
  std::string_view header(std::string_view name) const noexcept;
};

/// One response. The server adds Content-Length, Date-free framing and the
/// Connection header itself; `headers` are extra ones (no Content-Length).
struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// True when `x` and `y` are the same header name: equal but for ASCII
/// case (HTTP field names are case-insensitive, RFC 9110 5.1).
bool header_name_equals(std::string_view x, std::string_view y) noexcept;

/// The standard reason phrase of `status` ("OK", "Not Found", ...), or
/// "Unknown" for a code without one.
std::string_view http_reason(int status) noexcept;

/// The bytes of `res` on the wire (status line, headers, body); with
/// `keep_alive` false it carries "Connection: close".
std::string to_wire(const http_response& res, bool keep_alive);

/// How `to_wire` frames a response beyond `keep_alive`.
struct http_wire_options {
  /// False: the response carries "Connection: close".
  bool keep_alive = true;
  /// With `keep_alive`, say "Connection: keep-alive" (what an HTTP/1.0
  /// client that asked for keep-alive needs to hear).
  bool announce_keep_alive = false;
  /// False for an answer to HEAD: the headers (Content-Length included)
  /// as for GET, without the body.
  bool include_body = true;
};

/// The bytes of `res` on the wire, framed as `opts` says. Always
/// "HTTP/1.1"; a status outside 100-599 is sent as 500; 1xx, 204 and 304
/// carry neither body nor Content-Length. Extra headers with CR, LF or NUL
/// in them, and extra Content-Length, Transfer-Encoding or Connection
/// headers, are left out (the server frames the message itself).
std::string to_wire(const http_response& res, const http_wire_options& opts);

} // namespace shardwire
