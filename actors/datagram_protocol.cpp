#include "actors/datagram_protocol.hpp"

namespace shardwire {

// -- datagram_transport_ref ---------------------------------------------------

void datagram_transport_ref::bind(caf::scheduled_actor* self,
                                  datagram_transport_actor transport,
                                  transport_info info) {
  link_.bind(self, std::move(transport));
  info_ = std::move(info);
  closing_ = false;
}

void datagram_transport_ref::sendto(buffer bytes,
                                    caf::optional<endpoint> peer) {
  link_.send_fast(shardwire::sendto{std::move(bytes), std::move(peer)});
}

void datagram_transport_ref::close() {
  closing_ = true;
  link_.send(shardwire::close{});
}

void datagram_transport_ref::abort() {
  closing_ = true;
  link_.send(shardwire::abort{});
}

void datagram_transport_ref::pause_reading() {
  link_.send(shardwire::pause_reading{});
}

void datagram_transport_ref::resume_reading() {
  link_.send(shardwire::resume_reading{});
}

void datagram_transport_ref::set_protocol(datagram_protocol_actor next) {
  link_.send(set_datagram_protocol{std::move(next)});
}

// -- protocol defaults --------------------------------------------------------

datagram_protocol::~datagram_protocol() = default;
void datagram_protocol::connection_made(datagram_transport_ref&) {}
void datagram_protocol::datagram_received(const buffer&, const endpoint&) {}
void datagram_protocol::error_received(const caf::error&) {}
void datagram_protocol::pause_writing() {}
void datagram_protocol::resume_writing() {}
void datagram_protocol::connection_lost(const caf::error&) {}

// -- callback_datagram_protocol_actor -----------------------------------------

callback_datagram_protocol_actor::callback_datagram_protocol_actor(
    caf::actor_config& cfg, std::unique_ptr<datagram_protocol> impl)
    : callback_adapter(cfg, std::move(impl)) {
  impl_->transport_ = &transport_;
  impl_->self_ = this;
}

// What is the datagram's own: no callback is fatal (asyncio, C62), one bad
// datagram must not close a server.

void callback_datagram_protocol_actor::on_hot(const datagram& msg) {
  if (!finished_)
    logged("datagram_received",
           [&] { impl_->datagram_received(msg.bytes, msg.peer); });
}

auto callback_datagram_protocol_actor::handlers() {
  return std::make_tuple([](const datagram_error& msg) {
    auto& self = current();
    if (!self.finished_)
      self.logged("error_received",
                  [&] { self.impl_->error_received(msg.reason); });
  });
}

callback_datagram_protocol_actor::behavior_type
callback_datagram_protocol_actor::make_behavior() {
  return shared_behavior();
}

} // namespace shardwire
