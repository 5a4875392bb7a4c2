#include "actors/protocol.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/shared_behavior.hpp"

namespace shardwire {

// -- transport_ref ------------------------------------------------------------

void transport_ref::bind(caf::scheduled_actor* self, transport_actor transport,
                         transport_info info) {
  bind(self, std::move(transport));
  info_ = std::make_unique<const transport_info>(std::move(info));
}

void transport_ref::bind(caf::scheduled_actor* self,
                         transport_actor transport) {
  self_ = self;
  hdl_ = std::move(transport);
  fast_ = pinned_base::of(hdl_);
  info_.reset();
  closing_ = false;
}

const transport_info& transport_ref::info() const noexcept {
  static const transport_info none;
  return info_ ? *info_ : none;
}

template <class T>
void transport_ref::tell(T&& msg) {
  if (!hdl_) return;
  caf::actor_cast<caf::abstract_actor*>(hdl_)->enqueue(
      caf::make_mailbox_element(self_->ctrl(), caf::make_message_id(), {},
                                std::forward<T>(msg)),
      self_->context());
}

void transport_ref::write(buffer bytes) {
  // Co-located idle transport: deliver in this thread's reused element
  // instead of allocating one per write. The transport's empty mailbox
  // guarantees this write does not overtake an earlier one.
  shardwire::write msg{std::move(bytes)};
  if (fast_ == nullptr || !try_deliver_now(*fast_, msg)) tell(std::move(msg));
}

void transport_ref::writelines(std::vector<buffer> parts) {
  tell(shardwire::writelines{std::move(parts)});
}

void transport_ref::write_eof() {
  tell(shardwire::write_eof{});
}

void transport_ref::close() {
  closing_ = true;
  tell(shardwire::close{});
}

void transport_ref::abort() {
  closing_ = true;
  tell(shardwire::abort{});
}

void transport_ref::pause_reading() {
  tell(shardwire::pause_reading{});
}

void transport_ref::resume_reading() {
  tell(shardwire::resume_reading{});
}

void transport_ref::set_write_buffer_limits(caf::optional<uint64_t> high,
                                            caf::optional<uint64_t> low) {
  if (!hdl_) return;
  // A request, so that invalid limits are reported instead of lost.
  auto mid = self_->new_request_id(caf::message_priority::normal);
  caf::actor_cast<caf::abstract_actor*>(hdl_)->enqueue(
      caf::make_mailbox_element(self_->ctrl(), mid, {},
                                shardwire::set_write_buffer_limits{high, low}),
      self_->context());
  self_->add_multiplexed_response_handler(
      mid.response_id(),
      caf::behavior{[](const write_buffer_limits&) {},
                    [](caf::error& err) {
                      log::error("set_write_buffer_limits failed: ",
                                 describe(err));
                    }});
}

void transport_ref::set_protocol(protocol_actor next) {
  tell(shardwire::set_protocol{std::move(next)});
}

// -- protocol defaults --------------------------------------------------------

protocol::~protocol() = default;

void protocol::connection_made(transport_ref&) {}

void protocol::data_received(const buffer&) {}

bool protocol::eof_received() {
  return false;
}

void protocol::pause_writing() {}

void protocol::resume_writing() {}

void protocol::connection_lost(const caf::error&) {}

// -- callback_protocol_actor --------------------------------------------------

callback_protocol_actor::callback_protocol_actor(caf::actor_config& cfg,
                                                 std::unique_ptr<protocol> impl)
    : pinned<protocol_actor::base>(cfg), impl_(std::move(impl)) {
  impl_->transport_ = &transport_;
  impl_->self_ = this;
  // Its shared behavior has no `after` clause (and protocols may not
  // replace it: see protocol::self).
  never_uses_receive_timeouts();
}

template <class F>
bool callback_protocol_actor::guarded(const char* callback, bool fatal, F&& f) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    if (fatal) {
      log::error("Fatal error: protocol.", callback,
                 "() call failed: ", e.what());
      transport_.abort();
      finish(make_error(sw_errc::protocol_failed,
                        std::string{callback} + ": " + e.what()));
    } else {
      log::error("protocol.", callback, "() failed: ", e.what());
    }
  } catch (...) {
    log::error("protocol.", callback, "() threw a non-standard exception");
    if (fatal) {
      transport_.abort();
      finish(make_error(sw_errc::protocol_failed, callback));
    }
  }
  return false;
}

void callback_protocol_actor::finish(const caf::error& reason) {
  if (finished_) return;
  finished_ = true;
  transport_.mark_closing();
  guarded("connection_lost", false, [&] { impl_->connection_lost(reason); });
  quit();
}

caf::invoke_message_result
callback_protocol_actor::consume(caf::mailbox_element& x) {
  auto& content = x.content();
  if (x.mid.is_async() && content.match_elements<data>()) {
    // As CAF's consume() does: user code may ask for the current element
    // (current_sender(), ...) inside data_received.
    current_element_ = &x;
    on_data(content.get_as<data>(0));
    return caf::invoke_message_result::consumed;
  }
  current_actor<callback_protocol_actor>::scope current{this};
  return pinned::consume(x);
}

callback_protocol_actor::behavior_type
callback_protocol_actor::make_behavior() {
  // One behavior per shard thread for all callback protocols on it; see
  // runtime/shared_behavior.hpp.
  return thread_shared_behavior<callback_protocol_actor, behavior_type>(
      &callback_protocol_actor::make_shared_behavior);
}

callback_protocol_actor::behavior_type
callback_protocol_actor::make_shared_behavior() {
  using cur = current_actor<callback_protocol_actor>;
  return {
      [](connected& msg) { cur::get().on_connected(msg); },
      [](data& msg) { cur::get().on_data(msg); },
      [](eof) -> bool { return cur::get().on_eof(); },
      [](pause) {
        auto& self = cur::get();
        self.guarded("pause_writing", false,
                     [&] { self.impl_->pause_writing(); });
      },
      [](shardwire::resume) {
        auto& self = cur::get();
        self.guarded("resume_writing", false,
                     [&] { self.impl_->resume_writing(); });
      },
      [](lost& msg) { cur::get().finish(msg.reason); },
  };
}

void callback_protocol_actor::on_connected(connected& msg) {
  transport_.bind(this, std::move(msg.transport), std::move(msg.info));
  guarded("connection_made", false,
          [&] { impl_->connection_made(transport_); });
}

void callback_protocol_actor::on_data(const data& msg) {
  if (!finished_)
    guarded("data_received", true, [&] { impl_->data_received(msg.bytes); });
}

bool callback_protocol_actor::on_eof() {
  bool keep_open = false;
  if (!finished_ &&
      guarded("eof_received", true,
              [&] { keep_open = impl_->eof_received(); }) &&
      !keep_open)
    transport_.mark_closing();
  return keep_open;
}

} // namespace shardwire
