#include "actors/subprocess_protocol.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"

#include <csignal>

namespace shardwire {

// -- subprocess_transport_ref -------------------------------------------------

void subprocess_transport_ref::bind(subprocess_protocol_actor::base* self,
                                    subprocess_transport_actor transport,
                                    process_info info) {
  link_.bind(self, std::move(transport));
  info_ = std::move(info);
  closing_ = false;
}

template <class T>
void subprocess_transport_ref::ask(T msg) {
  // A request, so a refusal (no stdin pipe, child gone) comes back and is
  // logged here instead of vanishing.
  link_.ask(std::move(msg),
            caf::behavior{[] {}, [](caf::error& err) {
                            log::warning("subprocess transport: ",
                                         describe(err));
                          }});
}

void subprocess_transport_ref::write(buffer bytes) {
  ask(shardwire::write{std::move(bytes)});
}

void subprocess_transport_ref::write_eof() {
  link_.send(shardwire::write_eof{});
}

void subprocess_transport_ref::close() {
  closing_ = true;
  link_.send(shardwire::close{});
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

void subprocess_transport_ref::set_protocol(subprocess_protocol_actor next) {
  link_.send(set_subprocess_protocol{std::move(next)});
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
    : callback_adapter(cfg, std::move(impl)) {
  impl_->transport_ = &transport_;
  impl_->self_ = this;
}

// What is the subprocess's own: no callback is fatal (asyncio's loop logs
// an exception from a subprocess callback and goes on); `exited` records the
// return code for transport().returncode() first.

void callback_subprocess_protocol_actor::on_hot(const pipe_data& msg) {
  if (!finished_)
    logged("pipe_data_received",
           [&] { impl_->pipe_data_received(msg.fd, msg.bytes); });
}

auto callback_subprocess_protocol_actor::handlers() {
  return std::make_tuple(
      [](const pipe_lost& msg) {
        auto& self = current();
        if (!self.finished_)
          self.logged("pipe_connection_lost", [&] {
            self.impl_->pipe_connection_lost(msg.fd, msg.reason);
          });
      },
      [](const exited& msg) {
        auto& self = current();
        self.transport_.set_returncode(msg.status, msg.oom_killed);
        if (!self.finished_)
          self.logged("process_exited",
                      [&] { self.impl_->process_exited(msg.status); });
      });
}

callback_subprocess_protocol_actor::behavior_type
callback_subprocess_protocol_actor::make_behavior() {
  return shared_behavior();
}

} // namespace shardwire
