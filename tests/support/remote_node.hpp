// A second, networked actor system in the test's process: the "remote
// node" of distributed tests, published on a free port of 127.0.0.1.
#pragma once

#include "actors/node.hpp"

#include "tests/support/fixtures.hpp"

#include <memory>

namespace shardwire::test {

struct remote_node {
  node_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<node> n;
  uint16_t port = 0;

  remote_node() {
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    n = std::make_unique<node>(*sys);
    auto p = n->publish(0);
    REQUIRE(p);
    port = *p;
  }

  service_address address(std::string name) const {
    return {"127.0.0.1", port, std::move(name)};
  }

  ~remote_node() {
    n.reset();
    sys.reset();
  }
};

/// For runtime_fixture: the test's own runtime networked too.
inline void networked(test_config& cfg) {
  enable_networking(cfg);
}

} // namespace shardwire::test
