// Stream nodes: the directory and the server side of a connection.
#include "actors/stream_node.hpp"

#include "actors/detail/stream_node_link.hpp"
#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_config.hpp>
#include <caf/actor_proxy.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/forwarding_actor_proxy.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/make_actor.hpp>
#include <caf/message_id.hpp>
#include <caf/system_messages.hpp>

#include <atomic>
#include <map>
#include <mutex>

namespace shardwire {

// -- helpers shared with the client -------------------------------------------

namespace detail {

namespace {

// CAF's forwarding proxy drops what is sent to it once killed, so a request
// would wait for its timeout: this one answers requests at once with
// node_unavailable, as documented for a lost link.
class stream_node_proxy final : public caf::forwarding_actor_proxy {
public:
  using caf::forwarding_actor_proxy::forwarding_actor_proxy;

  void enqueue(caf::mailbox_element_ptr what,
               caf::execution_unit* ctx) override {
    if (!killed_.load(std::memory_order_acquire)) {
      caf::forwarding_actor_proxy::enqueue(std::move(what), ctx);
      return;
    }
    if (what && what->mid.is_request() && what->sender)
      what->sender->enqueue(
          ctrl(), what->mid.response_id(),
          caf::make_message(make_error(sw_errc::node_unavailable,
                                       "the stream node link of this proxy "
                                       "is gone")),
          ctx);
  }

  void kill_proxy(caf::execution_unit* ctx, caf::error reason) override {
    killed_.store(true, std::memory_order_release);
    caf::forwarding_actor_proxy::kill_proxy(ctx, std::move(reason));
  }

private:
  std::atomic<bool> killed_{false};
};

} // namespace

caf::strong_actor_ptr make_forwarding_proxy(caf::actor_system& sys,
                                            caf::actor dest) {
  caf::actor_config cfg;
  // A proxy on the local node with an id of its own: to the actors that
  // hold it, an ordinary actor of this system.
  return caf::make_actor<stream_node_proxy, caf::strong_actor_ptr>(
      sys.next_actor_id(), sys.node(), &sys, cfg, std::move(dest));
}

void kill_forwarding_proxy(caf::strong_actor_ptr& proxy, caf::error reason) {
  if (!proxy) return;
  auto ptr = std::move(proxy);

  static_cast<caf::actor_proxy*>(ptr->get())
      ->kill_proxy(nullptr, std::move(reason));
}

caf::error write_frame(caf::event_based_actor* self,
                       const transport_actor& transport, const node_frame& f) {
  std::vector<char> bytes;
  if (auto err = encode_frame(f, bytes)) return err;
  self->send(transport, write{buffer::adopt(std::move(bytes))});
  return caf::none;
}

} // namespace detail

// -- the directory ------------------------------------------------------------

struct stream_node_directory::impl {
  caf::actor_system* sys;
  mutable std::mutex mtx;
  std::map<std::string, service_entry> entries;
};

stream_node_directory::stream_node_directory(caf::actor_system& sys)
    : impl_(std::make_shared<impl>()) {
  impl_->sys = &sys;
}

void stream_node_directory::add_actor(std::string name, caf::actor hdl,
                                      std::set<std::string> interface) {
  if (!hdl) return;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->entries[name] = service_entry{hdl, std::move(interface)};
  }
  // An actor that exits leaves the directory (unless replaced meanwhile).
  std::weak_ptr<impl> weak = impl_;
  auto addr = hdl.address();
  hdl->attach_functor([weak, name, addr] {
    auto dir = weak.lock();
    if (!dir) return;
    std::lock_guard<std::mutex> guard{dir->mtx};
    auto i = dir->entries.find(name);
    if (i != dir->entries.end() && i->second.actor.address() == addr)
      dir->entries.erase(i);
  });
}

void stream_node_directory::remove(const std::string& name) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  impl_->entries.erase(name);
}

std::optional<service_entry>
stream_node_directory::find(const std::string& name) const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto i = impl_->entries.find(name);
  if (i == impl_->entries.end()) return std::nullopt;
  return i->second;
}

caf::actor_system& stream_node_directory::system() const noexcept {
  return *impl_->sys;
}

// -- the server side of a connection ------------------------------------------

namespace {

struct server_state {
  caf::event_based_actor* self = nullptr;
  stream_node_directory dir;
  transport_actor transport;
  frame_decoder decoder;
  /// The actor the client looked up, and the reply address requests to it
  /// carry (a proxy that hands replies back to this actor).
  caf::actor target;
  caf::strong_actor_ptr replies;
  /// Request id of a forwarded request -> the id of its request frame.
  std::map<uint64_t, uint64_t> pending;
  bool done = false;

  explicit server_state(stream_node_directory d) : dir(std::move(d)) {}
};

using server_ptr = std::shared_ptr<server_state>;

void server_write(const server_ptr& st, const node_frame& f) {
  if (auto err = detail::write_frame(st->self, st->transport, f))
    log::warning("stream node: frame not sent: " + describe(err));
}

void server_respond_error(const server_ptr& st, uint64_t id, caf::error err) {
  node_frame f;
  f.kind = frame_kind::response;
  f.id = id;
  f.failed = true;
  f.error = std::move(err);
  server_write(st, f);
}

// Ends the connection (a protocol violation or the link's end).
void server_finish(const server_ptr& st) {
  if (st->done) return;
  st->done = true;
  detail::kill_forwarding_proxy(st->replies, caf::exit_reason::normal);
  st->pending.clear();
}

void server_lookup(const server_ptr& st, node_frame& f) {
  node_frame out;
  out.kind = frame_kind::entry;
  out.version = node_protocol_version;
  if (f.version != node_protocol_version) {
    out.error = make_error(sw_errc::incompatible_node,
                           "directory version " +
                               std::to_string(node_protocol_version));
  } else if (auto e = st->dir.find(f.name); !e) {
    out.error = make_error(sw_errc::unknown_service, f.name);
  } else if (!f.interface.empty() && e->interface != f.interface) {
    out.error = make_error(sw_errc::incompatible_node,
                           f.name + ": the actor has another interface");
  } else {
    if (st->target && st->target != e->actor) st->self->demonitor(st->target);
    st->target = e->actor;
    st->self->monitor(st->target);
    out.interface = e->interface;
  }
  server_write(st, out);
}

void server_request(const server_ptr& st, node_frame& f) {
  auto self = st->self;
  if (!st->target) {
    if (!f.one_way)
      server_respond_error(st, f.id,
                           make_error(sw_errc::unknown_service,
                                      "no service looked up on this link"));
    return;
  }
  auto msg = decode_message(self->home_system(), f.payload);
  if (!msg) {
    if (!f.one_way)
      server_respond_error(st, f.id, std::move(msg.error()));
    else
      log::warning("stream node: one-way message dropped: " +
                   describe(msg.error()));
    return;
  }
  if (f.one_way) {
    st->target->enqueue(nullptr, caf::make_message_id(), std::move(*msg),
                        self->context());
    return;
  }
  auto mid = self->new_request_id(caf::message_priority::normal);
  st->pending.emplace(mid.request_id().integer_value(), f.id);
  st->target->enqueue(st->replies, mid, std::move(*msg), self->context());
}

// A reply (or an error, or a bounce from a dead actor) to a forwarded
// request, from the reply proxy.
void server_reply(const server_ptr& st, caf::message_id mid,
                  caf::message& msg) {
  if (!mid.is_response()) return;
  auto i = st->pending.find(mid.request_id().integer_value());
  if (i == st->pending.end()) return;
  auto id = i->second;
  st->pending.erase(i);
  if (msg.match_elements<caf::error>()) {
    server_respond_error(st, id, msg.get_as<caf::error>(0));
    return;
  }
  auto bytes = encode_message(st->self->home_system(), msg);
  if (!bytes) {
    server_respond_error(st, id, std::move(bytes.error()));
    return;
  }
  node_frame f;
  f.kind = frame_kind::response;
  f.id = id;
  f.payload = std::move(*bytes);
  if (auto err = detail::write_frame(st->self, st->transport, f))
    server_respond_error(st, id, std::move(err));
}

void server_data(const server_ptr& st, const buffer& bytes) {
  if (st->done) return;
  st->decoder.feed(bytes.bytes());
  for (;;) {
    auto next = st->decoder.next();
    if (!next) {
      log::warning("stream node: closing a connection: " +
                   describe(next.error()));
      st->self->send(st->transport, abort{});
      server_finish(st);
      return;
    }
    if (!*next) return;
    auto& f = **next;
    switch (f.kind) {
    case frame_kind::lookup:
      server_lookup(st, f);
      break;
    case frame_kind::request:
      server_request(st, f);
      break;
    case frame_kind::ping: {
      node_frame pong;
      pong.kind = frame_kind::pong;
      pong.id = f.id;
      server_write(st, pong);
      break;
    }
    default:
      break; // a client sends nothing else; ignored
    }
  }
}

caf::behavior server_impl(caf::event_based_actor* self,
                          stream_node_directory dir) {
  auto st = std::make_shared<server_state>(std::move(dir));
  st->self = self;
  self->set_default_handler(caf::drop);
  self->attach_functor([st] { server_finish(st); });
  self->set_down_handler([st](caf::down_msg& dm) {
    if (!st->target || dm.source != st->target.address()) return;
    st->target = nullptr;
    node_frame f;
    f.kind = frame_kind::down;
    f.error = dm.reason;
    server_write(st, f);
  });
  return {
      [=](connected& msg) {
        st->transport = msg.transport;
        st->replies = detail::make_forwarding_proxy(
            self->home_system(), caf::actor_cast<caf::actor>(self));
      },
      [=](data& msg) { server_data(st, msg.bytes); },
      [=](eof) { return false; },
      [=](shardwire::pause) {},
      [=](shardwire::resume) {},
      [=](lost&) {
        server_finish(st);
        self->quit();
      },
      [=](caf::forward_atom, caf::strong_actor_ptr&,
          std::vector<caf::strong_actor_ptr>&, caf::strong_actor_ptr&,
          caf::message_id mid,
          caf::message& msg) { server_reply(st, mid, msg); },
  };
}

} // namespace

protocol_factory serve_stream_node(stream_node_directory dir) {
  return [dir](shard& s) -> protocol_actor {
    return caf::actor_cast<protocol_actor>(spawn_fun_on(s, server_impl, dir));
  };
}

} // namespace shardwire
