// The simulation engine behind sim::network: hosts, links, connections,
// datagram sockets, the event queue and the trace. Private to sim.
//
// Everything here runs on the one thread that drives the simulation (the
// thread that created the network): the sim loop, the hosts' shards (adopted
// by that thread) and so every sim transport. No locks.
#pragma once

#include "actors/datagram_protocol.hpp"
#include "actors/protocol.hpp"
#include "runtime/buffer.hpp"
#include "runtime/pinned.hpp"
#include "runtime/shard.hpp"
#include "transports/datagram.hpp"
#include "sim/faults.hpp"
#include "sim/random.hpp"
#include "transports/stream.hpp"

#include <caf/actor_clock.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace shardwire::sim {
class network;
struct trace_event;
} // namespace shardwire::sim

namespace shardwire::sim::detail {

/// What the engine calls on a stream transport (through its host's shard,
/// like an Asio completion handler).
class stream_hooks {
public:
  virtual ~stream_hooks() = default;
  virtual void sim_readable() = 0;
  virtual void sim_writable() = 0;
};

/// What the engine calls on a datagram transport.
class datagram_hooks {
public:
  virtual ~datagram_hooks() = default;
  virtual void sim_readable() = 0;
  virtual void sim_error(int err) = 0;
};

struct host_state {
  std::string name;
  endpoint addr;
  std::unique_ptr<shard> sh;
  bool up = true;
  bool paused = false;
  uint32_t epoch = 0;
  uint16_t next_port = 49152;
  std::function<void(network&)> boot;
};

struct link_state {
  link_faults f;
  bool blocked = false; // partitioned
  bool held = false;    // hold(): messages wait for release()
  duration busy_until{0};
  bool ge_bad = false; // Gilbert-Elliott state
};

/// One direction of a stream connection.
struct pipe {
  uint64_t in_flight = 0;
  std::deque<buffer> inbox;
  uint64_t inbox_bytes = 0;
  bool fin_arrived = false;
  bool fin_sent = false;
  duration last_arrival{0};
  uint64_t crossed = 0;
  size_t stalled = 0; // segments of this pipe waiting in the held list
};

struct stream_conn {
  uint64_t id = 0;
  size_t host[2] = {0, 0};
  uint32_t epoch[2] = {0, 0};
  endpoint ep[2];
  pipe dir[2]; // dir[i]: side i -> side 1-i
  stream_hooks* t[2] = {nullptr, nullptr};
  std::shared_ptr<bool> alive[2];
  bool closed[2] = {false, false};   // the side's transport is gone
  bool vanished[2] = {false, false}; // closed by a crash: no FIN
  int error[2] = {0, 0};             // pending error (ECONNRESET)
  bool reset_sent = false;
};

struct dgram_socket {
  size_t host = 0;
  uint16_t port = 0;
  endpoint ep;
  std::optional<endpoint> remote;
  datagram_hooks* t = nullptr;
  std::shared_ptr<bool> alive;
  std::deque<std::pair<buffer, endpoint>> inbox;
};

/// A message waiting in the held list (hold() or a stalled stream segment).
struct held_entry {
  uint64_t id = 0;
  size_t from = 0, to = 0;
  bool stream = false;
  bool stalled = false;  // blocked link (released by heal), not hold()
  bool released = false; // let through by release()/heal
  uint64_t conn = 0;
  int side = 0; // sender side
  buffer bytes;
  bool fin = false;
  endpoint src, dst; // datagrams
};

struct event {
  duration at;
  uint64_t seq;
  std::function<void()> fn;
};

struct event_order {
  bool operator()(const event& x, const event& y) const {
    return x.at != y.at ? x.at > y.at : x.seq > y.seq;
  }
};

class core {
public:
  core(uint64_t seed, size_t pipe_capacity);
  ~core();

  // -- set-up ----------------------------------------------------------------
  uint64_t seed;
  size_t pipe_capacity;
  bool fast_path = true;
  // The reused mailbox elements of fast-path deliveries (pinned.hpp),
  // installed on the simulation thread while the loop runs.
  shardwire::detail::spare_store spares;
  random rng;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<host_state> hosts;
  std::map<std::pair<size_t, size_t>, link_state> links;
  link_faults default_faults;
  network* owner = nullptr;

  // -- time and events -------------------------------------------------------
  duration now() const;
  void set_now(duration t);
  std::vector<event> queue; // a heap ordered by event_order
  uint64_t next_seq = 0;
  void at(duration t, std::function<void()> fn);
  /// Posts `fn` to the host's shard (runs when the host is not paused).
  void post(size_t host, std::function<void()> fn);
  /// Runs every ready job on every running host and CAF's test scheduler.
  bool run_ready();
  /// Next event or timer time, if any.
  std::optional<duration> next_time() const;
  /// Runs the next timed thing (event or timers) at `t`.
  void step(duration t);

  // -- trace
  // -------------------------------------------------------------------
  std::vector<trace_event> trace;
  uint64_t next_id = 1;
  uint64_t cause = 0; // the event being handled (cause of what it logs)
  uint64_t log(std::string what, uint64_t cause_id = 0);
  std::map<std::string, uint64_t> fired;
  void fire(const std::string& fault, size_t a, size_t b);

  // -- hosts and links -------------------------------------------------------
  std::optional<size_t> find_host(const std::string& name_or_addr) const;
  link_state& link(size_t a, size_t b);
  duration sample_latency(size_t a, size_t b);
  /// Arrival time of `n` bytes sent now on a->b (bandwidth + latency).
  duration transit(size_t a, size_t b, size_t n);
  std::string link_name(size_t a, size_t b) const;

  // -- streams ---------------------------------------------------------------
  struct listener_entry {
    protocol_factory factory;
    tls_params tls; // no context: plain
  };
  std::map<std::pair<size_t, uint16_t>, listener_entry> listeners;
  std::map<uint64_t, stream_conn> conns;
  uint64_t next_conn = 1;
  void connect(size_t from, size_t to, uint16_t port, duration timeout,
               protocol_factory factory, connect_callback done,
               tls_params tls = {});
  void attach(uint64_t conn, int side, stream_hooks* t,
              std::shared_ptr<bool> alive);
  /// Bytes accepted (<= the window); -errno on error.
  int64_t write(uint64_t conn, int side, const buffer* parts, size_t n);
  struct read_result {
    buffer bytes;
    bool eof = false;
    int error = 0;
    bool would_block = false;
  };
  read_result read(uint64_t conn, int side, size_t max);
  void shutdown_write(uint64_t conn, int side);
  void close_side(uint64_t conn, int side);
  void reset_conn(uint64_t conn, const char* why);
  const stream_conn* find_conn(uint64_t conn) const;
  void send_segment(stream_conn& c, int side, buffer bytes, bool fin,
                    duration extra = duration::zero());
  void arrive_segment(held_entry seg);
  void notify_readable(stream_conn& c, int side);
  void notify_writable(stream_conn& c, int side);

  // -- datagrams -------------------------------------------------------------
  std::map<std::pair<size_t, uint16_t>, dgram_socket> dsocks;
  void open_datagram(size_t host, uint16_t port, std::optional<endpoint> remote,
                     datagram_protocol_factory factory, datagram_callback done);
  void attach_datagram(const endpoint& ep, datagram_hooks* t,
                       std::shared_ptr<bool> alive);
  int sendto(const endpoint& from, const buffer& bytes, const endpoint& to);
  std::optional<std::pair<buffer, endpoint>> recv(const endpoint& ep);
  void close_datagram(const endpoint& ep);
  void arrive_datagram(held_entry d);

  // -- held messages ---------------------------------------------------------
  std::vector<held_entry> held;
  void hold_or_deliver(held_entry e);
  void release_entry(size_t index);
  void release_stalled();

private:
  caf::actor_clock::time_point start_;
};

/// Settings of sim stream transports.
stream_settings sim_stream_settings(const tls_params& tls = {});

} // namespace shardwire::sim::detail
