// The quorum store on the simulated network (sim/): a cluster of replica
// and client hosts on one `sim::network` (or `sim::scenario`), and one seed's
// randomized run with faults, checked for linearizability.
//
// Threads: everything here runs on the thread that created the network
// (sim/network.hpp); `run_seed` builds its own network, so different
// seeds may run on different threads at once (sim/sweep.hpp).
#pragma once

#include "demos/kv_quorum/coordinator.hpp"
#include "demos/kv_quorum/replica.hpp"

#include "sim/history.hpp"
#include "sim/network.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kv_quorum {

namespace sim = shardwire::sim;

struct cluster_options {
  size_t replicas = 3;
  size_t clients = 3;
  uint16_t port = 7000;
  bool stale_read_bug = false;
  std::chrono::nanoseconds phase_timeout = std::chrono::milliseconds{100};
  std::chrono::nanoseconds op_deadline = std::chrono::seconds{1};
  /// Step of the driving loop: coordinators poll once per step.
  std::chrono::nanoseconds tick = std::chrono::milliseconds{5};
};

/// Replica hosts r1..rN, each with a disk (owned here, so it outlives
/// crashes: see replica.hpp) and a replica server started at every boot,
/// and client hosts c1..cM, each with a coordinator (writer id = 1-based
/// client number). Must be destroyed before the network (it stops the
/// coordinators, whose connections the network kills later).
class cluster {
public:
  /// Adds the hosts to `net` and starts the replicas.
  cluster(sim::network& net, cluster_options opts);
  ~cluster();

  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  const cluster_options& options() const noexcept { return opts_; }
  std::string replica_host(size_t i) const; // "r1" for 0
  std::string client_host(size_t i) const;  // "c1" for 0
  std::vector<std::string> replica_hosts() const;
  disk& disk_of(size_t replica) { return *disks_[replica]; }
  coordinator& client(size_t i) { return *clients_[i]; }

  /// Runs the network for `d` of virtual time in ticks, polling every
  /// coordinator after each.
  void run_for(std::chrono::nanoseconds d);
  /// The same until `pred` holds (checked after every tick) or `d` passed;
  /// returns `pred()`.
  bool run_until(const std::function<bool()>& pred, std::chrono::nanoseconds d);

  /// Runs client `i`'s get (or put, with a value) to completion, at most
  /// the op deadline plus a tick; nothing if it never completed.
  std::optional<op_result> get(size_t i, const std::string& key);
  std::optional<op_result> put(size_t i, const std::string& key,
                               const std::string& value);

private:
  std::optional<op_result> wait(size_t i, std::shared_ptr<op_result> out,
                                std::shared_ptr<bool> done);

  sim::network& net_;
  cluster_options opts_;
  std::vector<std::shared_ptr<disk>> disks_;
  std::vector<std::shared_ptr<coordinator>> clients_;
};

/// What one seed's run is made of.
struct run_options {
  size_t replicas = 3;
  size_t clients = 3;
  /// Keys the clients pick from: few, so operations on one key overlap.
  size_t keys = 2;
  /// Virtual time of random operations and faults, before the final heal.
  std::chrono::nanoseconds duration = std::chrono::seconds{3};
  bool stale_read_bug = false;
  /// Fill `run_report::trace` (what a determinism check compares).
  bool keep_trace = true;
};

/// One seed's result.
struct run_report {
  /// Linearizable, and every key readable by every client after the heal.
  bool ok = false;
  /// The network's trace (with the run's notes): what determinism compares.
  std::string trace;
  /// On failure: why, the checker's report and the fault schedule.
  std::string message;
  /// A few lines for a single-seed run: operations, faults, verdict.
  std::string summary;
  sim::history history;
};

/// One seed: a cluster, clients doing random gets and puts over a few keys,
/// and a fault schedule drawn from the seed: partitions (halves, one host
/// isolated, majorities ring), crashes and restarts of a minority of
/// replicas, link latency and jitter changes, heals. At the end everything
/// is healed and restarted, every client reads every key (which must
/// succeed), and the history is checked with `sim::kv_model()`.
run_report run_seed(uint64_t seed, const run_options& opts);

} // namespace kv_quorum
