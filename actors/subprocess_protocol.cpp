#include "actors/subprocess_protocol.hpp"

#include "actors/detail/logged_callback.hpp"
#include "actors/errors.hpp"
#include "runtime/log.hpp"

#include <csignal>

namespace shardwire {

// -- subprocess_transport_ref -------------------------------------------------

void subprocess_transport_ref::bind(subprocess_protocol_actor::base* self,
                                    subprocess_transport_actor transport,
                                    process_info info) {
  self_ = self;
  hdl_ = std::move(transport);
  info_ = std::move(info);
  closing_ = false;
}

template <class T>
void subprocess_transport_ref::ask(T msg) {
  // A request, so a refusal (no stdin pipe, child gone) comes back and is
  // logged here instead of vanishing.
  if (!hdl_ || self_ == nullptr) return;
  self_->request(hdl_, caf::infinite, std::move(msg))
      .then([] {},
            [](caf::error& err) {
              log::warning("subprocess transport: ", describe(err));
            });
}

void subprocess_transport_ref::write(buffer bytes) {
  ask(shardwire::write{std::move(bytes)});
}

void subprocess_transport_ref::write_eof() {
  if (hdl_ && self_ != nullptr) self_->send(hdl_, shardwire::write_eof{});
}

void subprocess_transport_ref::close() {
  closing_ = true;
  if (hdl_ && self_ != nullptr) self_->send(hdl_, shardwire::close{});
}

void subprocess_transport_ref::send_signal(int signo, bool group) {
  ask(shardwire::signal{signo, group});
}

void subprocess_transport_ref::terminate() {
  send_signal(SIGTERM);
}

void subprocess_transport_ref::kill() {
  send_signal(SIGKILL);
}

// -- protocol defaults --------------------------------------------------------

subprocess_protocol::~subprocess_protocol() = default;
void subprocess_protocol::connection_made(subprocess_transport_ref&) {}
void subprocess_protocol::pipe_data_received(int, const buffer&) {}
void subprocess_protocol::pipe_connection_lost(int, const caf::error&) {}
void subprocess_protocol::process_exited(int) {}
void subprocess_protocol::pause_writing() {}
void subprocess_protocol::resume_writing() {}
void subprocess_protocol::connection_lost(const caf::error&) {}

// -- callback_subprocess_protocol_actor ---------------------------------------

callback_subprocess_protocol_actor::callback_subprocess_protocol_actor(
    caf::actor_config& cfg, std::unique_ptr<subprocess_protocol> impl)
    : pinned<subprocess_protocol_actor::base>(cfg), impl_(std::move(impl)) {
  impl_->transport_ = &transport_;
  impl_->self_ = this;
}

template <class F>
void callback_subprocess_protocol_actor::guarded(const char* callback, F&& f) {
  detail::run_logged("subprocess_protocol", callback, std::forward<F>(f));
}

void callback_subprocess_protocol_actor::finish(const caf::error& reason) {
  if (finished_) return;
  finished_ = true;
  transport_.mark_closing();
  guarded("connection_lost", [&] { impl_->connection_lost(reason); });
  quit();
}

callback_subprocess_protocol_actor::behavior_type
callback_subprocess_protocol_actor::make_behavior() {
  return {
      [this](subprocess_connected& msg) {
        transport_.bind(this, std::move(msg.transport), std::move(msg.info));
        guarded("connection_made", [&] { impl_->connection_made(transport_); });
      },
      [this](const pipe_data& msg) {
        if (!finished_)
          guarded("pipe_data_received",
                  [&] { impl_->pipe_data_received(msg.fd, msg.bytes); });
      },
      [this](const pipe_lost& msg) {
        if (!finished_)
          guarded("pipe_connection_lost",
                  [&] { impl_->pipe_connection_lost(msg.fd, msg.reason); });
      },
      [this](const exited& msg) {
        transport_.set_returncode(msg.status);
        if (!finished_)
          guarded("process_exited", [&] { impl_->process_exited(msg.status); });
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
