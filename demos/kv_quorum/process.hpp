// The quorum store as processes: `kv_cluster replica` serves the replica
// protocol (replica.hpp) over TCP from a durable file (disk_file.hpp), and
// `kv_cluster qfront` serves kv_cluster's client lines
// (demos/kv_line_protocol.hpp) through coordinators (coordinator.hpp) with
// TCP connections to every replica. The same replica and coordinator code
// runs on the simulated network (simulation.hpp).
//
//   kv_cluster replica --port=P [--host=ADDR] [--data=FILE]
//   kv_cluster qfront  --port=P --replicas=HOST:PORT,HOST:PORT,...
//                      [--host=ADDR] [--writer-id=N] [--timeout-ms=N]
//                      [--bug=stale-read]
//
// replica: one shard (the disk is not thread-safe: every connection and
// every fsync runs on that shard's thread). With --data every kept version
// is appended to FILE and fsync'd before its store is acknowledged, and
// FILE is replayed at start. Without it the replica is memory-only and
// must not be restarted into the same cluster: ABD with an emptied replica
// can lose acknowledged writes.
//
// qfront: one coordinator per client connection, on that connection's
// shard: its replica connections are opened on the same shard, and a
// timer there polls it every 10 ms (coordinator.hpp's thread rule). Its
// writer id is --writer-id * 2^32 + a per-process connection counter, so
// qfronts with distinct --writer-id never share one. A connection's
// requests run one at a time, in order:
//
//   SET k v  -> OK                   GET k -> the value, or NIL
//   PING     -> PONG                 DEL k -> ERR unsupported (a register
//                                             cannot be removed)
//   an operation past --timeout-ms   -> ERR timeout (unknown: a SET may
//                                       still land)
//   anything else                    -> ERR bad request
//
// Both print "Serving ..." on stderr once ready and run until SIGINT or
// SIGTERM.
#pragma once

#include <string>

namespace kv_quorum {

/// Runs `mode` ("replica" or "qfront"); `argv[0]` is the mode word, then
/// its options (as --name=value). Returns the exit code.
int process_main(const std::string& mode, int argc, char** argv);

/// The usage lines of both modes (for kv_cluster's --help).
const char* process_usage();

} // namespace kv_quorum
