// The client side of the quorum store: ABD (Attiya, Bar-Noy, Dolev) with
// multi-writer timestamps over connections to every replica.
//
//   put(k, v): query a majority for k's highest timestamp (c, w), then
//              store (c + 1, my id) with v on a majority -> ok.
//   get(k):    query a majority for (timestamp, value); unless every reply
//              already holds the highest timestamp, write that version back
//              to a majority; then return its value.
//
// Any two majorities intersect, so a get sees every put that completed
// before it started, and the write-back makes sure no later get sees less:
// the register is linearizable while any majority of replicas is up and
// reachable, and needs no leader. Every phase is a request id sent to all
// connected replicas; replies to other ids are ignored, so late answers of
// an abandoned phase do no harm.
//
// Timeouts: a phase that lacks its majority after `phase_timeout` is sent
// again to the replicas that have not answered (that is also how a client
// learns that a crashed replica came back: its write meets a reset). An
// operation that has not finished by `op_deadline` completes as `unknown`:
// a put may still land later, so it is never reported as failed.
//
// Threads: a coordinator and the protocols of its connections (made by
// `connector`) must run on one thread: in the simulation, the thread that
// drives the network; in `kv_cluster qfront` (process.hpp), the shard of
// the client connection that owns it. `poll` is called by that thread
// outside any actor (between steps of the network; from a shard timer),
// because it opens connections.
#pragma once

#include "demos/kv_quorum/wire.hpp"

#include "actors/protocol.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kv_quorum {

struct coordinator_options {
  /// Writer id of this coordinator's puts; unique among coordinators, > 0.
  uint64_t id = 1;
  /// Number of replicas (indices 0 .. replicas-1).
  size_t replicas = 3;
  std::chrono::nanoseconds phase_timeout = std::chrono::milliseconds{100};
  std::chrono::nanoseconds op_deadline = std::chrono::seconds{1};
  /// The deliberate bug `stale-read`: a get returns the first reply of
  /// its query phase, one replica's possibly lagging version, and skips
  /// the quorum and the write-back.
  bool stale_read_bug = false;
};

/// How an operation ended.
struct op_result {
  /// True: ok. False: unknown (deadline passed; a put may still land).
  bool ok = false;
  /// A get's value (nothing: absent).
  std::optional<std::string> value;
};

using op_callback = std::function<void(op_result)>;

/// Opens a connection to replica `index` running `factory`'s protocol;
/// calls `done(false)` if the attempt failed (the protocol then never
/// starts), `done(true)` once it is connected.
using connector =
    std::function<void(size_t index, shardwire::protocol_factory factory,
                       std::function<void(bool)> done)>;

class replica_link;

/// One client of the store: at most one operation at a time.
class coordinator : public std::enable_shared_from_this<coordinator> {
public:
  /// `now`: the clock for timeouts (the simulation's virtual time).
  static std::shared_ptr<coordinator>
  make(coordinator_options opts, std::function<std::chrono::nanoseconds()> now,
       connector connect);

  /// Starts a get or put; `done` runs once, inside a replica connection's
  /// actor when the last needed reply arrives, or inside `poll` when the
  /// deadline passed. Throws std::logic_error while `busy()`.
  void async_get(std::string key, op_callback done);
  void async_put(std::string key, std::string value, op_callback done);

  /// An operation is in progress.
  bool busy() const noexcept { return op_.has_value(); }

  /// Connects to replicas without a connection, resends a phase past its
  /// timeout, completes an operation past its deadline as unknown.
  void poll();

  /// From now on does nothing and calls no callback (before the network
  /// that runs its connections goes away).
  void stop();

  /// `stop`, and closes its replica connections, also those that connect
  /// later: for a coordinator that goes while the process carries on (one
  /// per client connection of `kv_cluster qfront`, process.hpp).
  void close();

  /// Replicas with a live connection.
  size_t connected() const;

  const coordinator_options& options() const noexcept { return opts_; }

private:
  friend class replica_link;

  struct operation {
    bool is_put = false;
    std::string key;
    std::string value; // put only
    op_callback done;
    std::chrono::nanoseconds deadline{0};
    // -- current phase --
    bool storing = false; // phase 2
    uint64_t rid = 0;
    std::chrono::nanoseconds phase_started{0};
    std::vector<bool> answered;
    size_t answers = 0;
    // -- what the query phase found --
    versioned best;
    bool agree = true;
  };

  coordinator(coordinator_options opts,
              std::function<std::chrono::nanoseconds()> now, connector connect);

  void start(operation op);
  void begin_phase(bool storing);
  void send_phase(size_t index);
  void finish(op_result r);

  // From the connections' protocols.
  void attached(size_t index, uint64_t gen, shardwire::transport_actor t);
  void received(size_t index, const message& m);
  void detached(size_t index, uint64_t gen);

  coordinator_options opts_;
  std::function<std::chrono::nanoseconds()> now_;
  connector connect_;
  bool stopped_ = false;
  bool closing_ = false; // `close` was called
  uint64_t next_rid_ = 0;
  uint64_t next_gen_ = 0;
  struct slot {
    std::optional<shardwire::transport_actor> transport;
    uint64_t gen = 0; // the connection `transport` belongs to
    bool connecting = false;
  };
  std::vector<slot> slots_;
  std::optional<operation> op_;
};

} // namespace kv_quorum
