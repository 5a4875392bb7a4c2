#include "actors/protocol.hpp"

#include "actors/detail/inline_lend.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"

namespace shardwire {

// -- transport_ref ------------------------------------------------------------

void transport_ref::bind(caf::scheduled_actor* self, transport_actor transport,
                         transport_info info) {
  bind(self, std::move(transport));
  info_ = std::make_unique<const transport_info>(std::move(info));
}

void transport_ref::bind(caf::scheduled_actor* self,
                         transport_actor transport) {
  link_.bind(self, std::move(transport));
  info_.reset();
  closing_ = false;
}

const transport_info& transport_ref::info() const noexcept {
  static const transport_info none;
  return info_ ? *info_ : none;
}

void transport_ref::write(buffer bytes) {
  link_.send_fast(shardwire::write{std::move(bytes)});
}

void transport_ref::writelines(std::vector<buffer> parts) {
  link_.send(shardwire::writelines{std::move(parts)});
}

void transport_ref::write_eof() {
  link_.send(shardwire::write_eof{});
}

void transport_ref::close() {
  closing_ = true;
  link_.send(shardwire::close{});
}

void transport_ref::abort() {
  closing_ = true;
  link_.send(shardwire::abort{});
}

void transport_ref::pause_reading() {
  link_.send(shardwire::pause_reading{});
}

void transport_ref::resume_reading() {
  link_.send(shardwire::resume_reading{});
}

void transport_ref::set_write_buffer_limits(caf::optional<uint64_t> high,
                                            caf::optional<uint64_t> low) {
  // A request, so that invalid limits are reported instead of lost.
  link_.ask(shardwire::set_write_buffer_limits{high, low},
            caf::behavior{[](const write_buffer_limits&) {},
                          [](caf::error& err) {
                            log::error("set_write_buffer_limits failed: ",
                                       describe(err));
                          }});
}

void transport_ref::set_protocol(protocol_actor next) {
  link_.send(shardwire::set_protocol{std::move(next)});
}

void transport_ref::start_tls(
    tls_params tls, buffer early,
    std::function<void(caf::expected<transport_info>)> done) {
  upgrading_ = true;
  link_.ask(shardwire::start_tls{std::move(tls), std::move(early), received_},
            caf::behavior{[this, done](tls_started& ok) {
                            upgrading_ = false;
                            info_ =
                                std::make_unique<const transport_info>(ok.info);
                            if (done) done(std::move(ok.info));
                          },
                          [this, done](caf::error& err) {
                            upgrading_ = false;
                            if (done) done(std::move(err));
                          }});
}

void transport_ref::hand_back(const buffer& bytes) {
  link_.send(start_tls_data{bytes});
}

void transport_ref::lend(read_lease lease) {
  // Inside the transport's own fast-path delivery of buffer_filled: in
  // place, no message (detail/inline_lend.hpp).
  if (detail::lend_in_place(link_.fast_target(), lease)) return;
  // The fast path: a co-located idle transport takes the lease at once.
  link_.send_fast(lend_buffer{std::move(lease)});
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
    : callback_adapter(cfg, std::move(impl)) {
  impl_->transport_ = &transport_;
  impl_->self_ = this;
}

// What is the stream's own: asyncio makes data_received and eof_received
// fatal (section 2.8); everything else is the adapter's.

bool callback_protocol_actor::on_eof() {
  bool keep_open = false;
  if (!finished_ &&
      fatal("eof_received", [&] { keep_open = impl_->eof_received(); }) &&
      !keep_open)
    transport_.mark_closing();
  return keep_open;
}

auto callback_protocol_actor::handlers() {
  return std::make_tuple([](eof) -> bool { return current().on_eof(); });
}

callback_protocol_actor::behavior_type callback_protocol_actor::make_behavior() {
  return shared_behavior();
}

} // namespace shardwire
