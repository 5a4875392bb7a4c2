// The replica side of the quorum store: answers queries and stores
// (demos/kv_quorum/wire.hpp) against its host's disk.
//
// Crash-recovery model: a replica's data lives in a `disk` that belongs to
// its host, not to any actor. A crash of the host kills the replica's
// actors and connections (memory) but leaves the disk as it was, and the
// restarted replica serves from it again. A store is acknowledged only
// after it is on the disk, so a crash never loses an acknowledged write.
// (The simulated disk is synchronous and never loses data: an fsync that
// returned, not a page cache.)
#pragma once

#include "demos/kv_quorum/wire.hpp"

#include "actors/protocol.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace kv_quorum {

/// One host's durable storage: the newest version of each key it stored.
/// Not thread-safe: used by the replica connections of one host, which in
/// the simulation all run on the simulation's thread, and in
/// `kv_cluster replica` on its one shard (process.hpp).
///
/// Group commit: `store` hands each kept version to `persist` (a process's
/// replica appends it to its file, disk_file.hpp), and `make_durable`
/// makes all of them durable at once (one fsync). A replica connection
/// applies every line of one read, then calls `make_durable`, then writes
/// the answers: no acknowledgement (and no reply showing a new version)
/// leaves before its version is durable, and a burst of stores costs one
/// fsync, not one each.
struct disk {
  std::map<std::string, versioned> data;
  /// Called by `store` with each version it keeps, before it keeps it. May
  /// throw; the store is then not applied. Empty in the simulation (its
  /// disk is the map).
  std::function<void(const std::string& key, const versioned& v)> persist;
  /// Makes every version handed to `persist` durable. May throw. Empty in
  /// the simulation.
  std::function<void()> sync;
  /// A `persist` or `sync` failed: what is in `data` may be on no disk, so
  /// the replica must answer nothing any more (fsync errors are not
  /// retried: the kernel may have dropped the pages; a restart replays
  /// the file).
  bool failed = false;

  /// The version held for `key` ((0, 0), absent, if none).
  versioned get(const std::string& key) const;
  /// Keeps `v` if it is newer than what is held; never goes back.
  void store(const std::string& key, const versioned& v);
  /// Runs `sync` if a store since the last call persisted something;
  /// rethrows its error after setting `failed`.
  void make_durable();

private:
  bool dirty_ = false;
};

/// The protocol of one connection to a replica: a query is answered with
/// the disk's version, a store is applied (if newer) and acknowledged.
/// Malformed lines close the connection.
shardwire::protocol_factory replica_protocol(std::shared_ptr<disk> d);

} // namespace kv_quorum
