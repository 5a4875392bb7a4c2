// Protocols shared by the simulation tests: a pinger that sends `count`
// messages, one per `interval` of (virtual or real) time, each after the
// echo of the previous one came back.
#pragma once

#include "actors/protocol.hpp"
#include "runtime/buffer.hpp"
#include "tests/support/fixtures.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace shardwire::test {

struct pinger_state {
  event_log_ptr log;
  int count = 10;
  std::chrono::milliseconds interval{0};
};

inline protocol_actor::behavior_type pinger_impl(protocol_actor::pointer self,
                                                 pinger_state st) {
  auto transport = std::make_shared<transport_actor>();
  auto sent = std::make_shared<int>(0);
  auto got = std::make_shared<std::string>();
  auto send_next = [=] {
    auto msg = "ping " + std::to_string((*sent)++) + "\n";
    if (st.interval.count() > 0)
      self->delayed_send(*transport, st.interval,
                         shardwire::write{buffer::copy_of(msg)});
    else
      self->send(*transport, shardwire::write{buffer::copy_of(msg)});
  };
  return {
      [=](connected& msg) {
        *transport = msg.transport;
        st.log->add("connected");
        send_next();
      },
      [=](data& msg) {
        *got += msg.bytes.str();
        size_t pos;
        while ((pos = got->find('\n')) != std::string::npos) {
          st.log->add("echo:" + got->substr(0, pos));
          got->erase(0, pos + 1);
          if (*sent < st.count)
            send_next();
          else
            self->send(*transport, shardwire::close{});
        }
      },
      [=](eof) {
        st.log->add("eof");
        return false;
      },
      [=](shardwire::pause) { st.log->add("pause"); },
      [=](shardwire::resume) { st.log->add("resume"); },
      [=](lost& msg) {
        st.log->add(msg.reason ? "lost:error" : "lost");
        self->quit();
      },
  };
}

inline protocol_factory pinger(pinger_state st) {
  return protocol_fun(pinger_impl, st);
}

} // namespace shardwire::test
