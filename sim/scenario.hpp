// A test scenario over the simulated network: the network plus what a test
// around it needs, for Catch2 or any other framework.
//
//   sim::scenario sc{42, {"client", "server"}};
//   sc->listen("server", 7, echo_factory);
//   auto conn = sc->create_connection({"client", "server", 7}, my_protocol);
//   sc->link("client", "server").slice = {1, 4};
//   bool ok = sc.run_until([&] { return done; }, 10s);
//   INFO(sc.report());              // captured now, printed if a check fails
//   REQUIRE(ok);
//   CHECK(sc.happened_before("deliver client->server", "fin server->client"));
//   CHECK(sc->unfired().empty());
//
// Everything runs on the calling thread (see network.hpp). A failing run is
// replayed exactly by setting SHARDWIRE_SIM_SEED to the seed its report
// printed: the environment wins over the seed given in code.
#pragma once

#include "sim/network.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire::sim {

class scenario {
public:
  /// A network seeded with `seed` (or SHARDWIRE_SIM_SEED) with `hosts`.
  explicit scenario(uint64_t seed, std::vector<std::string> hosts = {},
                    network_options opts = {});

  network& net() noexcept { return *net_; }
  network* operator->() noexcept { return net_.get(); }

  /// The seed in use (after the environment override).
  uint64_t seed() const noexcept { return seed_; }

  /// Runs until `pred` holds or `deadline` of virtual time passed; false on
  /// the deadline (or when nothing is left to do) with `pred` still false.
  bool run_until(const std::function<bool()>& pred,
                 sim::duration deadline = std::chrono::minutes(10));

  /// Trace lines that contain `text`.
  size_t count(std::string_view text) const;

  /// True if some trace line containing `a` comes before the first line
  /// containing `b` after it; false if either never happened.
  bool happened_before(std::string_view a, std::string_view b) const;

  /// What a failure report needs: the seed and how to replay it, faults
  /// that never fired, and the last `tail` trace lines.
  std::string report(size_t tail = 40) const;

  /// SHARDWIRE_SIM_SEED if set and numeric, else `fallback`.
  static uint64_t seed_from_env(uint64_t fallback);

private:
  std::vector<std::string> lines() const;

  uint64_t seed_;
  std::unique_ptr<network> net_;
};

} // namespace shardwire::sim
