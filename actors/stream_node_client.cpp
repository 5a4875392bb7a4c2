// Stream nodes: the client side of a connection, and its proxy.
#include "actors/detail/stream_node_link.hpp"
#include "actors/errors.hpp"
#include "actors/stream_node.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message_id.hpp>
#include <caf/system_messages.hpp>

#include <map>

namespace shardwire::detail {

namespace {

using lookup_timeout_atom = caf::atom_constant<caf::atom("swsnlkto")>;

struct client_state {
  caf::event_based_actor* self = nullptr;
  std::string name;
  std::set<std::string> interface;
  caf::actor watch;
  uint64_t attempt = 0;
  transport_actor transport;
  frame_decoder decoder;
  /// Set once the lookup succeeded; messages to it become request frames.
  caf::strong_actor_ptr proxy;
  bool up = false;
  bool done = false;
  uint64_t next_id = 0;
  struct waiting {
    caf::strong_actor_ptr sender;
    caf::message_id mid;
  };
  /// Requests sent whose response has not arrived, by frame id.
  std::map<uint64_t, waiting> pending;
};

using client_ptr = std::shared_ptr<client_state>;

// Ends the link once: a failed lookup is reported to the watch; with the
// service up, pending requests fail with node_unavailable and the proxy
// exits with `proxy_reason`.
void client_finish(const client_ptr& st, caf::error why,
                   caf::error proxy_reason) {
  if (st->done) return;
  st->done = true;
  auto what =
      "stream node link to service " + st->name + " lost: " + describe(why);
  if (!st->up) {
    caf::anon_send(st->watch, sn_fail_atom::value, st->attempt,
                   why && (is(why, sw_errc::unknown_service) ||
                           is(why, sw_errc::incompatible_node) ||
                           is(why, sw_errc::node_unavailable))
                       ? why
                       : make_error(sw_errc::node_unavailable, what));
  }
  for (auto& [id, w] : st->pending)
    if (w.sender)
      w.sender->enqueue(
          st->proxy, w.mid.response_id(),
          caf::make_message(make_error(sw_errc::node_unavailable, what)),
          nullptr);
  st->pending.clear();
  kill_forwarding_proxy(st->proxy, std::move(proxy_reason));
}

void client_end(
    const client_ptr& st, caf::error why,
    caf::error proxy_reason = caf::exit_reason::remote_link_unreachable) {
  if (st->transport) st->self->send(st->transport, abort{});
  client_finish(st, std::move(why), std::move(proxy_reason));
  st->self->quit();
}

void client_entry(const client_ptr& st, node_frame& f) {
  if (st->up) return; // one lookup per connection
  caf::error err;
  if (f.version != node_protocol_version)
    err = make_error(sw_errc::incompatible_node, "service " + st->name +
                                                     ": directory version " +
                                                     std::to_string(f.version));
  else if (f.error)
    err = f.error;
  else if (!st->interface.empty() && f.interface != st->interface)
    err = make_error(sw_errc::incompatible_node, "service " + st->name +
                                                     ": the actor has another "
                                                     "interface");
  if (err) {
    client_end(st, std::move(err));
    return;
  }
  auto self = st->self;
  st->up = true;
  st->proxy = make_forwarding_proxy(self->home_system(),
                                    caf::actor_cast<caf::actor>(self));
  self->send(st->watch, sn_up_atom::value, st->attempt,
             caf::actor_cast<caf::actor>(st->proxy),
             caf::actor_cast<caf::actor>(self));
}

void client_response(const client_ptr& st, node_frame& f) {
  auto i = st->pending.find(f.id);
  if (i == st->pending.end()) return;
  auto w = std::move(i->second);
  st->pending.erase(i);
  caf::message reply;
  if (f.failed) {
    reply = caf::make_message(std::move(f.error));
  } else if (auto msg = decode_message(st->self->home_system(), f.payload)) {
    reply = std::move(*msg);
  } else {
    reply = caf::make_message(std::move(msg.error()));
  }
  if (w.sender)
    w.sender->enqueue(st->proxy, w.mid.response_id(), std::move(reply),
                      st->self->context());
}

void client_data(const client_ptr& st, const buffer& bytes) {
  if (st->done) return;
  st->decoder.feed(bytes.bytes());
  for (;;) {
    auto next = st->decoder.next();
    if (!next) {
      client_end(st, std::move(next.error()));
      return;
    }
    if (!*next) return;
    auto& f = **next;
    switch (f.kind) {
    case frame_kind::entry:
      client_entry(st, f);
      break;
    case frame_kind::response:
      client_response(st, f);
      break;
    case frame_kind::pong:
      st->self->send(st->watch, sn_pong_atom::value, f.id);
      break;
    case frame_kind::down:
      // The service exited: its proxy exits with the same reason.
      client_end(
          st,
          make_error(sw_errc::node_unavailable,
                     "service " + st->name + " exited: " + describe(f.error)),
          f.error);
      return;
    default:
      break; // a server sends nothing else; ignored
    }
    if (st->done) return;
  }
}

// A message sent to the proxy: becomes a request frame.
void client_forward(const client_ptr& st, caf::strong_actor_ptr& sender,
                    caf::message_id mid, caf::message& msg) {
  // Link management messages of the proxy itself are not carried.
  if (msg.match_elements<caf::exit_msg>() ||
      msg.match_elements<caf::link_atom, caf::strong_actor_ptr>() ||
      msg.match_elements<caf::unlink_atom, caf::strong_actor_ptr>())
    return;
  bool one_way = !mid.is_request();
  auto fail = [&](caf::error err) {
    if (!one_way && sender)
      sender->enqueue(st->proxy, mid.response_id(),
                      caf::make_message(std::move(err)), st->self->context());
    else
      log::warning("stream node: one-way message to " + st->name +
                   " dropped: " + describe(err));
  };
  if (st->done) {
    fail(
        make_error(sw_errc::node_unavailable,
                   "the stream node link to service " + st->name + " is gone"));
    return;
  }
  auto bytes = encode_message(st->self->home_system(), msg);
  if (!bytes) {
    fail(std::move(bytes.error()));
    return;
  }
  node_frame f;
  f.kind = frame_kind::request;
  f.id = ++st->next_id;
  f.one_way = one_way;
  f.payload = std::move(*bytes);
  if (auto err = write_frame(st->self, st->transport, f)) {
    fail(std::move(err));
    return;
  }
  if (!one_way) st->pending.emplace(f.id, client_state::waiting{sender, mid});
}

caf::behavior client_impl(caf::event_based_actor* self, std::string name,
                          std::set<std::string> interface, caf::actor watch,
                          uint64_t attempt, caf::timespan lookup_timeout) {
  auto st = std::make_shared<client_state>();
  st->self = self;
  st->name = std::move(name);
  st->interface = std::move(interface);
  st->watch = std::move(watch);
  st->attempt = attempt;
  self->set_default_handler(caf::drop);
  // Killed without its connection ending (its host crashed, its system
  // stops): the proxy still exits and the requests still fail.
  self->attach_functor([st](const caf::error& reason) {
    client_finish(
        st,
        make_error(sw_errc::node_unavailable,
                   "its connection actor exited: " + describe(reason)),
        caf::exit_reason::remote_link_unreachable);
  });
  return {
      [=](connected& msg) {
        st->transport = msg.transport;
        node_frame f;
        f.kind = frame_kind::lookup;
        f.version = node_protocol_version;
        f.name = st->name;
        f.interface = st->interface;
        if (auto err = write_frame(self, st->transport, f)) {
          client_end(st, std::move(err));
          return;
        }
        self->delayed_send(self, lookup_timeout, lookup_timeout_atom::value);
      },
      [=](data& msg) { client_data(st, msg.bytes); },
      [=](eof) { return false; },
      [=](shardwire::pause) {},
      [=](shardwire::resume) {},
      [=](lost& msg) {
        st->transport = nullptr;
        client_end(st, msg.reason ? msg.reason
                                  : make_error(sw_errc::node_unavailable,
                                               "the peer closed the link"));
      },
      [=](lookup_timeout_atom) {
        if (!st->up && !st->done)
          client_end(st,
                     make_error(sw_errc::node_unavailable,
                                "service " + st->name + ": lookup timed out"));
      },
      [=](sn_drop_atom) {
        client_end(st, make_error(sw_errc::node_unavailable,
                                  "service " + st->name +
                                      ": the link was dropped (node "
                                      "suspected or watch gone)"));
      },
      [=](sn_ping_atom, uint64_t tag) {
        if (!st->done && st->up) {
          node_frame f;
          f.kind = frame_kind::ping;
          f.id = tag;
          (void)write_frame(self, st->transport, f);
        }
      },
      [=](caf::forward_atom, caf::strong_actor_ptr& sender,
          std::vector<caf::strong_actor_ptr>&, caf::strong_actor_ptr&,
          caf::message_id mid,
          caf::message& msg) { client_forward(st, sender, mid, msg); },
  };
}

} // namespace

protocol_factory stream_node_client(std::string name,
                                    std::set<std::string> interface,
                                    caf::actor watch, uint64_t attempt,
                                    caf::timespan lookup_timeout) {
  return [=](shard& s) -> protocol_actor {
    return caf::actor_cast<protocol_actor>(spawn_fun_on(
        s, client_impl, name, interface, watch, attempt, lookup_timeout));
  };
}

} // namespace shardwire::detail
