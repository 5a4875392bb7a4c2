// Actor style: the protocol is a typed actor. `protocol_actor` lists the
// messages it must handle (connected, data, eof, pause, resume, lost); a
// missing or misspelt handler is a compile error.
#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/protocol.hpp"
#include "runtime/pinned.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <future>
#include <iostream>
#include <memory>
#include <string>

using namespace shardwire;

using reply_promise = std::shared_ptr<std::promise<std::string>>;

// pinned<...>: the actor always runs on the shard of its connection.
class hello_client : public pinned<protocol_actor::base> {
public:
  hello_client(caf::actor_config& cfg, reply_promise reply)
      : pinned(cfg), reply_(std::move(reply)) {}

  behavior_type make_behavior() override {
    return {
        [this](connected& msg) {
          // Handled before the transport reads anything.
          transport_ = msg.transport;
          // write, close, abort and pause are also POSIX names: qualify them.
          send(transport_, shardwire::write{buffer::copy_of("hello\n")});
          send(transport_,
               shardwire::write_eof{}); // half-close after the bytes
        },
        [this](data& msg) { received_ += msg.bytes.view(); },
        [](eof) {
          return false; // reply false: the transport closes itself
        },
        [](shardwire::pause) {},  // our write buffer passed its high mark
        [](shardwire::resume) {}, // ... and drained again
        [this](lost& msg) {       // always the last message, exactly once
          reply_->set_value(msg.reason ? "error: " + describe(msg.reason)
                                       : received_);
          quit();
        },
    };
  }

private:
  reply_promise reply_;
  transport_actor transport_;
  std::string received_;
};

int main(int argc, char** argv) {
  config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  auto reply = std::make_shared<std::promise<std::string>>();
  auto echoed = reply->get_future();
  connect_options opts; // 127.0.0.1 by default
  opts.port = 8888;
  // Blocks this (non-shard) thread until `connected` was handled.
  auto conn = create_connection(rt, opts, spawn_protocol<hello_client>(reply));
  if (!conn) {
    std::cerr << "cannot connect: " << describe(conn.error()) << std::endl;
    return 1;
  }
  std::cout << "Echoed: " << echoed.get();
}
