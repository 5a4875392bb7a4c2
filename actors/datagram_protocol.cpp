#include "actors/datagram_protocol.hpp"

#include "actors/detail/logged_callback.hpp"
#include "actors/errors.hpp"
#include "runtime/log.hpp"

namespace shardwire {

// -- datagram_transport_ref ---------------------------------------------------

void datagram_transport_ref::bind(caf::scheduled_actor* self,
                                  datagram_transport_actor transport,
                                  transport_info info) {
  self_ = self;
  hdl_ = std::move(transport);
  info_ = std::move(info);
  closing_ = false;
}

template <class T>
void datagram_transport_ref::tell(T&& msg) {
  if (!hdl_) return;
  caf::actor_cast<caf::abstract_actor*>(hdl_)->enqueue(
      caf::make_mailbox_element(self_->ctrl(), caf::make_message_id(), {},
                                std::forward<T>(msg)),
      self_->context());
}

void datagram_transport_ref::sendto(buffer bytes,
                                    caf::optional<endpoint> peer) {
  tell(shardwire::sendto{std::move(bytes), std::move(peer)});
}

void datagram_transport_ref::close() {
  closing_ = true;
  tell(shardwire::close{});
}

void datagram_transport_ref::abort() {
  closing_ = true;
  tell(shardwire::abort{});
}

void datagram_transport_ref::pause_reading() {
  tell(shardwire::pause_reading{});
}

void datagram_transport_ref::resume_reading() {
  tell(shardwire::resume_reading{});
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
    : pinned<datagram_protocol_actor::base>(cfg), impl_(std::move(impl)) {
  impl_->transport_ = &transport_;
  impl_->self_ = this;
}

template <class F>
void callback_datagram_protocol_actor::guarded(const char* callback, F&& f) {
  // asyncio (C62): no datagram callback is fatal; the error is logged.
  detail::run_logged("datagram_protocol", callback, std::forward<F>(f));
}

void callback_datagram_protocol_actor::finish(const caf::error& reason) {
  if (finished_) return;
  finished_ = true;
  transport_.mark_closing();
  guarded("connection_lost", [&] { impl_->connection_lost(reason); });
  quit();
}

callback_datagram_protocol_actor::behavior_type
callback_datagram_protocol_actor::make_behavior() {
  return {
      [this](datagram_connected& msg) {
        transport_.bind(this, std::move(msg.transport), std::move(msg.info));
        guarded("connection_made", [&] { impl_->connection_made(transport_); });
      },
      [this](const datagram& msg) {
        if (!finished_)
          guarded("datagram_received",
                  [&] { impl_->datagram_received(msg.bytes, msg.peer); });
      },
      [this](const datagram_error& msg) {
        if (!finished_)
          guarded("error_received", [&] { impl_->error_received(msg.reason); });
      },
      [this](pause) {
        guarded("pause_writing", [&] { impl_->pause_writing(); });
      },
      [this](shardwire::resume) {
        guarded("resume_writing", [&] { impl_->resume_writing(); });
      },
      [this](const lost& msg) { finish(msg.reason); },
  };
}

} // namespace shardwire
