#include "tools/http_server.hpp"

#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"
#include "runtime/runtime.hpp"
#include "tools/http_request_parser.hpp"
#include "transports/tcp.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <nlohmann/json.hpp>

#include <exception>
#include <utility>

namespace shardwire {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_response& x) {
  return f(caf::meta::type_name("shardwire::http_response"), x.status,
           x.content_type, x.body, x.headers);
}

namespace detail {

// -- messages to a connection (never leave the process) ----------------------

/// The answer to request number `seq` of the connection.
struct http_reply {
  uint64_t seq = 0;
  http_response res;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_reply& x) {
  return f(caf::meta::type_name("shardwire::http_reply"), x.seq, x.res);
}

/// Which timer of a connection went off.
enum class http_timer : uint8_t { request, idle, linger };

/// A timer of the connection went off. Each kind has at most one on its
/// way; the connection compares the time with the deadline in force.
struct http_timeout {
  http_timer kind = http_timer::request;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_timeout& x) {
  return f(caf::meta::type_name("shardwire::http_timeout"), x.kind);
}

/// A stream protocol that also takes replies (from any thread) and timers.
using http_connection_actor =
    protocol_actor::extend<caf::reacts_to<http_reply>,
                           caf::reacts_to<http_timeout>>;

/// What every connection of one server shares (read-only).
struct http_shared {
  http_server_options opts;
  http_handler handler;
};

namespace {

/// Above this many buffered bytes not yet parsed (pipelined while a request
/// is with the handler), the connection stops reading.
constexpr size_t pause_reading_bytes = 64 * 1024;

using clock_type = std::chrono::steady_clock;

/// Closing: how long the peer gets to see our FIN and close its side, and
/// how much it may send meanwhile (read and dropped), before the socket is
/// closed anyway. Closing a socket with unread input makes the kernel send
/// RST, which can destroy the last response before the peer read it (a
/// client still sending a body after 413, or pipelined requests after
/// "Connection: close"); so the server half-closes and drains first, as
/// HTTP servers do ("lingering close").
constexpr auto linger_time = std::chrono::seconds(2);
constexpr size_t linger_bytes = 1024 * 1024;

void send_reply(const caf::actor_addr& conn, uint64_t seq, http_response res) {
  // A connection that is gone leaves nothing to upgrade to: a no-op.
  if (auto hdl = caf::actor_cast<caf::actor>(conn))
    caf::anon_send(hdl, http_reply{seq, std::move(res)});
}

} // namespace

// -- http_connection ---------------------------------------------------------

/// One HTTP connection, pinned to its transport's shard. Parses requests one
/// at a time, hands each to the handler and writes the answers in order.
class http_connection : public pinned<http_connection_actor::base> {
public:
  http_connection(caf::actor_config& cfg, std::shared_ptr<const http_shared> sh)
      : pinned(cfg), sh_(std::move(sh)),
        parser_(http_limits{sh_->opts.max_header_bytes,
                            sh_->opts.max_body_bytes}) {}

  behavior_type make_behavior() override {
    return {
        [this](shardwire::connected& msg) {
          transport_.bind(this, std::move(msg.transport));
          set_deadline(http_timer::idle);
        },
        [this](shardwire::data& msg) { on_data(msg.bytes.view()); },
        [this](shardwire::eof) -> bool { return on_eof(); },
        [](shardwire::pause) {},
        [](shardwire::resume) {},
        [this](shardwire::lost&) {
          closing_ = true;
          quit();
        },
        [this](http_reply& msg) { respond(msg.seq, std::move(msg.res)); },
        [this](http_timeout& msg) { on_timeout(msg); },
    };
  }

private:
  // -- events ----------------------------------------------------------------

  void on_data(std::string_view bytes) {
    if (closing_) {
      lingered_ += bytes.size();
      if (lingered_ > linger_bytes) transport_.close();
      return;
    }
    pending_.append(bytes);
    if (busy_) {
      // Pipelined bytes wait for the answer in flight; a bounded number.
      if (!read_paused_ && pending_.size() - pos_ > pause_reading_bytes) {
        read_paused_ = true;
        log::debug("http server: ", pending_.size() - pos_,
                   " bytes wait behind a request; reading paused");
        transport_.pause_reading();
      }
      return;
    }
    pump();
  }

  bool on_eof() {
    eof_ = true;
    // Closing: the peer saw our FIN and closed too; the transport closes.
    if (closing_) return false;
    // The answer in flight (and those to buffered requests) still go out;
    // respond() closes once nothing is left.
    if (busy_) return true;
    // A request cut short by EOF can never complete: nothing to answer.
    closing_ = true;
    return false;
  }

  void on_timeout(const http_timeout& msg) {
    if (msg.kind == http_timer::linger) {
      transport_.close();
      return;
    }
    auto& t = timer(msg.kind);
    t.pending = false;
    if (closing_ || t.deadline == clock_type::time_point::max()) return;
    auto now = clock_type::now();
    if (now < t.deadline) {
      // Moved on since this timer was set: wait for the rest.
      start_timer(msg.kind, t.deadline - now);
      return;
    }
    t.deadline = clock_type::time_point::max();
    if (msg.kind == http_timer::idle)
      close();
    else
      send_error(408, "request not complete in time");
  }

  // -- the request cycle -----------------------------------------------------

  /// Parses buffered bytes until a request is with the handler, the input
  /// is exhausted or refused.
  void pump() {
    while (!busy_ && !closing_) {
      std::string_view rest{pending_};
      rest.remove_prefix(pos_);
      pos_ += parser_.feed(rest);
      if (pos_ == pending_.size()) {
        pending_.clear();
        pos_ = 0;
      }
      if (parser_.take_continue())
        transport_.write(std::string_view{"HTTP/1.1 100 Continue\r\n\r\n"});
      switch (parser_.current_state()) {
      case http_request_parser::state::failed:
        send_error(parser_.error().status, parser_.error().message);
        return;
      case http_request_parser::state::request_ready:
        dispatch(std::move(*parser_.next()));
        break;
      case http_request_parser::state::done:
        // Only after a last request, which closes when answered.
        close();
        return;
      case http_request_parser::state::need_more:
        waiting_for_bytes();
        return;
      }
    }
  }

  /// All buffered bytes are parsed and no request is with the handler.
  void waiting_for_bytes() {
    if (read_paused_) {
      read_paused_ = false;
      transport_.resume_reading();
    }
    if (parser_.in_progress()) {
      clear_deadline(http_timer::idle);
      // Set once per request, when its first bytes arrived.
      if (timer(http_timer::request).deadline == clock_type::time_point::max())
        set_deadline(http_timer::request);
    } else if (timer(http_timer::idle).deadline ==
               clock_type::time_point::max()) {
      set_deadline(http_timer::idle);
    }
  }

  void dispatch(http_request req) {
    busy_ = true;
    ++seq_;
    keep_alive_ = req.keep_alive;
    head_ = req.method == "HEAD";
    http10_ = req.http_minor == 0;
    // The request is whole: the time with the handler counts for neither.
    clear_deadline(http_timer::request);
    clear_deadline(http_timer::idle);
    auto seq = seq_;
    try {
      sh_->handler(std::move(req), http_responder{this->address(), seq});
    } catch (const std::exception& e) {
      log::warning("http server: handler failed: ", e.what());
      respond(seq, http_error_response(500, e.what()));
    } catch (...) {
      log::warning("http server: handler threw a non-standard exception");
      respond(seq, http_error_response(500, "handler failed"));
    }
  }

  /// Writes the answer to request `seq` if it is the one in flight (a late
  /// answer after a 500 is dropped), then goes on with the next request.
  void respond(uint64_t seq, http_response res) {
    if (closing_ || !busy_ || seq != seq_) return;
    busy_ = false;
    http_wire_options wire;
    wire.keep_alive = keep_alive_;
    wire.announce_keep_alive = keep_alive_ && http10_;
    wire.include_body = !head_;
    transport_.write(buffer::adopt(to_wire(res, wire)));
    if (!keep_alive_) {
      close();
      return;
    }
    pump();
    // The peer half-closed: once nothing is in flight, nothing more comes.
    if (eof_ && !busy_ && !closing_) close();
  }

  /// Answers an error as JSON and closes (flushing the answer first).
  void send_error(int status, std::string_view message) {
    if (closing_) return;
    log::debug("http server: answering ", status, ": ", message);
    transport_.write(
        buffer::adopt(to_wire(http_error_response(status, message), false)));
    close();
  }

  /// Flushes what was written, half-closes, and drains the peer's input
  /// until it closes too or the linger time is over (see linger_time).
  void close() {
    if (closing_) return;
    closing_ = true;
    if (eof_) {
      transport_.close(); // the peer is done sending: nothing to drain
      return;
    }
    transport_.write_eof();
    if (read_paused_) {
      read_paused_ = false;
      transport_.resume_reading();
    }
    this->delayed_send(self_handle(), linger_time,
                       http_timeout{http_timer::linger});
  }

  // -- timers ----------------------------------------------------------------

  http_connection_actor self_handle() {
    return caf::actor_cast<http_connection_actor>(this);
  }

  // One deadline per kind, and at most one timer message on its way per
  // kind: a busy keep-alive connection moves its deadlines at every request
  // without piling up timers in CAF's clock (each holds the actor).
  struct timer_state {
    clock_type::time_point deadline = clock_type::time_point::max();
    bool pending = false;
  };

  timer_state& timer(http_timer kind) noexcept {
    return kind == http_timer::idle ? idle_ : request_;
  }

  /// Starts the time of `kind` now (0 or less in the options: never).
  void set_deadline(http_timer kind) {
    auto d = kind == http_timer::idle ? sh_->opts.idle_timeout
                                      : sh_->opts.request_timeout;
    if (d.count() <= 0) return;
    auto& t = timer(kind);
    t.deadline = clock_type::now() + d;
    if (!t.pending) start_timer(kind, d);
  }

  void clear_deadline(http_timer kind) noexcept {
    timer(kind).deadline = clock_type::time_point::max();
  }

  void start_timer(http_timer kind, clock_type::duration after) {
    timer(kind).pending = true;
    // Rounded up, so that it does not go off just before the deadline.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(after);
    this->delayed_send(self_handle(), ms, http_timeout{kind});
  }

  // -- state -----------------------------------------------------------------

  std::shared_ptr<const http_shared> sh_;
  http_request_parser parser_;
  transport_ref transport_;
  // Bytes received and not yet parsed start at pending_[pos_].
  std::string pending_;
  size_t pos_ = 0;
  // Number of the request with the handler (or last answered).
  uint64_t seq_ = 0;
  bool busy_ = false;      // a request is with the handler
  bool keep_alive_ = true; // of the request in flight
  bool head_ = false;      // the request in flight is a HEAD
  bool http10_ = false;    // the request in flight is HTTP/1.0
  bool eof_ = false;       // the peer half-closed
  size_t lingered_ = 0;    // bytes dropped while closing
  bool closing_ = false;   // close sent (or the connection is lost)
  bool read_paused_ = false;
  timer_state request_; // a request began, is not complete
  timer_state idle_;    // nothing in progress, nothing with the handler
};

} // namespace detail

// -- http_responder ----------------------------------------------------------

http_responder::http_responder(http_responder&& other) noexcept
    : conn_(std::exchange(other.conn_, caf::actor_addr{})), seq_(other.seq_) {}

http_responder& http_responder::operator=(http_responder&& other) noexcept {
  if (this != &other) {
    http_responder old{std::move(*this)}; // answers 500 if it still owes
    conn_ = std::exchange(other.conn_, caf::actor_addr{});
    seq_ = other.seq_;
  }
  return *this;
}

http_responder::~http_responder() {
  if (!conn_) return;
  try {
    detail::send_reply(conn_, seq_,
                       http_error_response(500, "the handler dropped the "
                                                "request"));
  } catch (...) {
    // Out of memory in a destructor: the peer waits for its timeout
    // rather than the process ending.
  }
}

void http_responder::operator()(http_response res) && {
  if (!conn_) return;
  auto conn = std::exchange(conn_, caf::actor_addr{});
  detail::send_reply(conn, seq_, std::move(res));
}

// -- helpers -----------------------------------------------------------------

http_handler
http_sync_handler(std::function<http_response(const http_request&)> fn) {
  return [fn = std::move(fn)](http_request req, http_responder res) {
    std::move(res)(fn(req));
  };
}

http_response http_error_response(int status, std::string_view message) {
  nlohmann::json j;
  j["error"] = std::string{message};
  j["status"] = status;
  http_response res;
  res.status = status;
  res.content_type = "application/json";
  // `replace`: an exception text is not necessarily UTF-8.
  res.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return res;
}

// -- http_server -------------------------------------------------------------

caf::expected<http_server> http_server::start(runtime& rt,
                                              http_server_options opts,
                                              http_handler handler) {
  if (!handler)
    return make_error(sw_errc::invalid_argument, "http_server: no handler");
  if (opts.max_header_bytes == 0)
    return make_error(sw_errc::invalid_argument,
                      "http_server: max_header_bytes is 0");
  server_options so;
  so.hosts = {opts.host};
  so.port = opts.port;
  // Request/response: a client that sends without reading the answers
  // fills its own socket buffers, not this process's memory.
  so.reads_follow_writes = true;
  auto sh = std::make_shared<const detail::http_shared>(
      detail::http_shared{std::move(opts), std::move(handler)});
  auto factory = [sh](shard& s) -> protocol_actor {
    return spawn_on<detail::http_connection>(s, sh);
  };
  auto srv = create_server(rt, std::move(factory), std::move(so));
  if (!srv) return srv.error();
  http_server out;
  out.server_ = srv->actor;
  if (srv->sockets.empty()) {
    out.stop();
    return make_error(sw_errc::invalid_argument,
                      "http_server: no address to listen on");
  }
  out.address_ = srv->sockets.front();
  return out;
}

http_server::http_server(http_server&& other) noexcept
    : server_(std::exchange(other.server_, server_actor{})),
      address_(std::move(other.address_)) {}

http_server& http_server::operator=(http_server&& other) noexcept {
  if (this != &other) {
    stop();
    server_ = std::exchange(other.server_, server_actor{});
    address_ = std::move(other.address_);
  }
  return *this;
}

http_server::~http_server() {
  stop();
}

void http_server::stop() {
  if (!server_) return;
  // In this order: the listener closes what it accepted, then itself.
  caf::anon_send(server_, close_clients{});
  caf::anon_send(server_, shardwire::close{});
  server_ = nullptr;
}

} // namespace shardwire
