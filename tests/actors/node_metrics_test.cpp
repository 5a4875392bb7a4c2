// Nodes count the lookups they send and their failures in the global
// metrics registry (runtime/metrics.hpp, docs/metrics.md).
#include "actors/node.hpp"
// Both in one unit: node.hpp's watch_backoff and the supervisors'
// backoff_policy were once one name with two definitions.
#include "actors/supervisor.hpp"

#include "runtime/metrics.hpp"
#include "tests/support/remote_node.hpp"

using namespace shardwire;
using namespace shardwire::test;

TEST_CASE("a node counts a lookup and its failure by error") {
  runtime_fixture fx{1, networked};
  remote_node remote;
  auto value = [](const char* family, const metric_labels& labels) {
    auto* f = metrics_registry::global().find(family);
    return f != nullptr ? f->counter(labels).value() : 0;
  };
  const metric_labels sent{{"kind", "lookup"}};
  const metric_labels unknown{{"kind", "lookup"}, {"error", "unknown_service"}};
  auto sent0 = value("shardwire_node_requests_total", sent);
  auto unknown0 = value("shardwire_node_request_failures_total", unknown);
  auto r = lookup_actor(fx.rt->system(), remote.address("nobody"), {},
                        std::chrono::seconds(5));
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), sw_errc::unknown_service));
  CHECK(value("shardwire_node_requests_total", sent) - sent0 == 1);
  CHECK(value("shardwire_node_request_failures_total", unknown) - unknown0 ==
        1);
}
