#include "tools/http_message.hpp"

#include <algorithm>

namespace shardwire {

namespace {

// A header line must stay one line: a name or value with CR, LF or NUL
// would let an application split the response (header injection).
bool safe_header(std::string_view name, std::string_view value) noexcept {
  auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (name.empty() || std::any_of(name.begin(), name.end(), bad) ||
      std::any_of(value.begin(), value.end(), bad))
    return false;
  // The server frames the body itself; a second length would be a lie.
  return !header_name_equals(name, "Content-Length") &&
         !header_name_equals(name, "Transfer-Encoding") &&
         !header_name_equals(name, "Connection");
}

// RFC 9110 section 6.4.1: 1xx and 204 carry no body and no Content-Length;
// 304 carries no body.
bool status_without_body(int status) noexcept {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

} // namespace

std::string_view http_request::header(std::string_view name) const noexcept {
  for (auto& [key, value] : headers)
    if (header_name_equals(key, name)) return value;
  return {};
}

std::string_view http_reason(int status) noexcept {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Content";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

std::string to_wire(const http_response& res, bool keep_alive) {
  http_wire_options opts;
  opts.keep_alive = keep_alive;
  return to_wire(res, opts);
}

std::string to_wire(const http_response& res, const http_wire_options& opts) {
  // A status outside 100-599 cannot be sent as it is: it is an
  // application bug, answered as such.
  int status = (res.status >= 100 && res.status <= 599) ? res.status : 500;
  bool no_body = status_without_body(status);
  std::string out;
  out.reserve(128 + res.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += http_reason(status);
  out += "\r\n";
  if (!no_body && !res.content_type.empty() &&
      safe_header("Content-Type", res.content_type)) {
    out += "Content-Type: ";
    out += res.content_type;
    out += "\r\n";
  }
  if (!no_body) {
    out += "Content-Length: ";
    out += std::to_string(res.body.size());
    out += "\r\n";
  }
  for (auto& [name, value] : res.headers) {
    if (!safe_header(name, value) ||
        (!res.content_type.empty() && header_name_equals(name, "Content-Type")))
      continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!opts.keep_alive)
    out += "Connection: close\r\n";
  else if (opts.announce_keep_alive)
    out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!no_body && opts.include_body) out += res.body;
  return out;
}

bool header_name_equals(std::string_view x, std::string_view y) noexcept {
  auto lower = [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  };
  return x.size() == y.size() &&
         std::equal(x.begin(), x.end(), y.begin(),
                    [&](char a, char b) { return lower(a) == lower(b); });
}

} // namespace shardwire
