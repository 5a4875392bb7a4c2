// Waiting for an actor's end in a test: the reason from its down_msg.
#pragma once

#include "actors/errors.hpp"
#include "tests/support/fixtures.hpp"

#include <caf/scoped_actor.hpp>

namespace shardwire::test {

/// Waits for the down_msg of `who` (which `self` monitors) and returns its
/// reason, or sw_errc::timeout after the tests' deadline. Other messages
/// stay in `self`'s mailbox.
inline caf::error wait_down(caf::scoped_actor& self, const caf::actor& who) {
  caf::error reason{sw_errc::timeout};
  bool done = false;
  while (!done)
    self->receive(
        [&](caf::down_msg& msg) {
          if (msg.source == who.address()) {
            reason = msg.reason;
            done = true;
          }
        },
        caf::after(deadline) >> [&] { done = true; });
  return reason;
}

} // namespace shardwire::test
