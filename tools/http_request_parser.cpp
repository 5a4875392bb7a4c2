#include "tools/http_request_parser.hpp"

#include <http_parser.h>

#include <algorithm>
#include <new>

namespace shardwire {

namespace {

int status_of(http_errno err) noexcept {
  switch (err) {
  case HPE_HEADER_OVERFLOW:
    return 431;
  case HPE_INVALID_VERSION:
    return 505;
  default:
    return 400;
  }
}

} // namespace

struct http_request_parser::impl {
  http_parser p;
  http_limits limits;
  state st = state::need_more;
  http_parse_error err;
  // The request being parsed, and the completed one waiting for `next`.
  http_request cur;
  std::optional<http_request> ready;
  // Header callbacks come in pieces: a field may be split over several
  // on_header_field calls, then its value over several on_header_value.
  bool in_field = false;
  bool in_message = false;
  bool headers_done = false;
  bool want_continue = false;
  // Bytes consumed while the headers of the next request were not
  // complete (request line, header lines, empty lines before them).
  size_t header_bytes = 0;
  // A callback ran out of memory: the exception waits until the C parser
  // returned (it must not unwind through C frames).
  bool alloc_failed = false;

  explicit impl(http_limits lim) : limits(lim) {
    http_parser_init(&p, HTTP_REQUEST);
    p.data = this;
  }

  void fail(int status, std::string message) {
    if (st == state::failed) return;
    st = state::failed;
    err.status = status;
    err.message = std::move(message);
  }

  static impl& of(http_parser* p) noexcept {
    return *static_cast<impl*>(p->data);
  }

  // Runs `f`; a bad_alloc becomes a callback error (rethrown by `feed`).
  template <class F>
  static int guarded(http_parser* p, F f) noexcept {
    auto& self = of(p);
    try {
      return f(self);
    } catch (const std::bad_alloc&) {
      self.alloc_failed = true;
      return 1;
    }
  }

  // -- callbacks
  // ---------------------------------------------------------------

  static int on_message_begin(http_parser* p) {
    return guarded(p, [](impl& self) {
      self.cur = http_request{};
      self.in_message = true;
      self.in_field = false;
      self.headers_done = false;
      self.want_continue = false;
      return 0;
    });
  }

  static int on_url(http_parser* p, const char* at, size_t n) {
    return guarded(p, [=](impl& self) {
      self.cur.target.append(at, n);
      return 0;
    });
  }

  static int on_header_field(http_parser* p, const char* at, size_t n) {
    return guarded(p, [=](impl& self) {
      // Trailers of a chunked body: bounded by libhttp-parser, not kept.
      if (self.headers_done) return 0;
      if (!self.in_field || self.cur.headers.empty()) {
        self.cur.headers.emplace_back();
        self.in_field = true;
      }
      self.cur.headers.back().first.append(at, n);
      return 0;
    });
  }

  static int on_header_value(http_parser* p, const char* at, size_t n) {
    return guarded(p, [=](impl& self) {
      if (self.headers_done) return 0;
      self.in_field = false;
      // The C parser calls on_header_field first; an empty list would be
      // its bug, refused rather than trusted.
      if (self.cur.headers.empty()) return 1;
      self.cur.headers.back().second.append(at, n);
      return 0;
    });
  }

  static int on_headers_complete(http_parser* p) {
    return guarded(p, [p](impl& self) {
      self.headers_done = true;
      auto& req = self.cur;
      req.method = http_method_str(static_cast<http_method>(p->method));
      req.http_major = p->http_major;
      req.http_minor = p->http_minor;
      if (p->http_major != 1) {
        self.fail(505, "HTTP version not supported");
        return -1;
      }
      // RFC 9112 section 3.2: a 1.1 request without Host is refused.
      if (p->http_minor >= 1 &&
          std::none_of(req.headers.begin(), req.headers.end(), [](auto& h) {
            return header_name_equals(h.first, "Host");
          })) {
        self.fail(400, "missing Host header");
        return -1;
      }
      bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
      bool chunked = (p->flags & F_CHUNKED) != 0;
      if (has_length && p->content_length > self.limits.max_body_bytes) {
        self.fail(413, "request body too large");
        return -1;
      }
      bool body_expected = chunked || (has_length && p->content_length > 0);
      self.want_continue =
          body_expected && p->http_minor >= 1 &&
          header_name_equals(req.header("Expect"), "100-continue");
      return 0;
    });
  }

  static int on_chunk_header(http_parser* p) {
    return guarded(p, [p](impl& self) {
      // content_length holds this chunk's size here: refuse it before
      // its bytes arrive.
      if (p->content_length >
          self.limits.max_body_bytes - self.cur.body.size()) {
        self.fail(413, "request body too large");
        return 1;
      }
      return 0;
    });
  }

  static int on_body(http_parser* p, const char* at, size_t n) {
    return guarded(p, [=](impl& self) {
      if (n > self.limits.max_body_bytes - self.cur.body.size()) {
        self.fail(413, "request body too large");
        return 1;
      }
      self.cur.body.append(at, n);
      return 0;
    });
  }

  static int on_message_complete(http_parser* p) {
    return guarded(p, [p](impl& self) {
      self.cur.keep_alive = http_should_keep_alive(p) != 0 && p->upgrade == 0;
      self.ready = std::move(self.cur);
      self.cur = http_request{};
      self.in_message = false;
      self.want_continue = false;
      // One request at a time: the parser stops right after this byte and
      // `feed` returns; the rest waits with the caller.
      http_parser_pause(p, 1);
      return 0;
    });
  }

  static const http_parser_settings& settings() noexcept {
    static const http_parser_settings s = [] {
      http_parser_settings x;
      http_parser_settings_init(&x);
      x.on_message_begin = &on_message_begin;
      x.on_url = &on_url;
      x.on_header_field = &on_header_field;
      x.on_header_value = &on_header_value;
      x.on_headers_complete = &on_headers_complete;
      x.on_body = &on_body;
      x.on_message_complete = &on_message_complete;
      x.on_chunk_header = &on_chunk_header;
      return x;
    }();
    return s;
  }

  // Judges one http_parser_execute call over `len` bytes that consumed `n`.
  void after_execute(size_t n, size_t len) {
    if (st == state::failed) return; // a callback refused the request
    auto code = HTTP_PARSER_ERRNO(&p);
    if (code == HPE_PAUSED && ready) {
      st = state::request_ready;
      return;
    }
    if (code != HPE_OK) {
      fail(status_of(code), http_errno_description(code));
      return;
    }
    // The parser stops early without an error only after an upgrade
    // request, whose message_complete paused it already. Anything else
    // would leave `feed` without progress: refuse it.
    if (n < len) fail(400, "unparsable request");
  }
};

http_request_parser::http_request_parser(http_limits limits)
    : impl_(std::make_unique<impl>(limits)) {}

http_request_parser::~http_request_parser() = default;

http_request_parser::http_request_parser(http_request_parser&&) noexcept =
    default;

http_request_parser&
http_request_parser::operator=(http_request_parser&&) noexcept = default;

size_t http_request_parser::feed(std::string_view bytes) {
  auto& d = *impl_;
  size_t total = 0;
  while (total < bytes.size() && d.st == state::need_more) {
    auto chunk = bytes.substr(total);
    bool counting = !d.headers_done;
    if (counting) {
      // Fed no further than the header bound: headers that complete in
      // this call fit in it, and if they do not complete, the bound is
      // reached exactly.
      size_t room = d.limits.max_header_bytes - d.header_bytes;
      if (room == 0) {
        d.fail(431, "request headers too large");
        break;
      }
      chunk = chunk.substr(0, room);
    }
    size_t n = http_parser_execute(&d.p, &impl::settings(), chunk.data(),
                                   chunk.size());
    n = std::min(n, chunk.size());
    if (d.alloc_failed) {
      d.alloc_failed = false;
      d.fail(500, "out of memory");
      throw std::bad_alloc{};
    }
    if (counting && !d.headers_done) d.header_bytes += n;
    total += n;
    d.after_execute(n, chunk.size());
  }
  return total;
}

std::optional<http_request> http_request_parser::next() {
  auto& d = *impl_;
  if (d.st != state::request_ready) return std::nullopt;
  auto req = std::move(d.ready);
  d.ready.reset();
  d.headers_done = false;
  d.header_bytes = 0;
  if (req->keep_alive) {
    d.st = state::need_more;
    http_parser_pause(&d.p, 0);
  } else {
    d.st = state::done;
  }
  return req;
}

http_request_parser::state http_request_parser::current_state() const noexcept {
  return impl_->st;
}

const http_parse_error& http_request_parser::error() const noexcept {
  return impl_->err;
}

bool http_request_parser::in_progress() const noexcept {
  return impl_->in_message;
}

bool http_request_parser::take_continue() noexcept {
  auto& d = *impl_;
  bool out = d.want_continue && d.st == state::need_more;
  d.want_continue = false;
  return out;
}

const http_limits& http_request_parser::limits() const noexcept {
  return impl_->limits;
}

} // namespace shardwire
