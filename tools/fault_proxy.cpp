#include "tools/fault_proxy.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"
#include "runtime/runtime.hpp"
#include "tools/fault_control.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/tcp.hpp"

#include <caf/actor_cast.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unordered_map>
#include <variant>

namespace shardwire {

// -- shared state ------------------------------------------------------------

namespace detail {

/// Shared by the `fault_proxy` handle (any thread) and every session (on
/// shard threads). The mutex guards `faults`, `faults_version` writes and
/// `sessions`; counters are relaxed atomics.
struct fault_proxy_state {
  runtime* rt = nullptr;
  fault_proxy_options opts;

  mutable std::mutex mtx;
  fault_set faults;
  std::vector<fault_layer> layers;
  // Bumped under `mtx` with every change; sessions compare it (lock-free)
  // on each chunk and reload `faults` only when it moved.
  std::atomic<uint64_t> faults_version{1};
  std::unordered_map<uint64_t, caf::actor_addr> sessions;

  std::atomic<uint64_t> next_id{0};
  std::atomic<uint64_t> upstream_failures{0};
  std::array<std::atomic<uint64_t>, 2> bytes{};
  std::array<std::atomic<uint64_t>, 2> swallowed{};
  std::array<std::atomic<uint64_t>, 2> writes{};
  std::atomic<uint64_t> cuts{0};
  std::atomic<uint64_t> resets{0};
  std::array<std::atomic<uint64_t>, 2> received{};

  std::pair<fault_set, uint64_t> snapshot() const {
    std::lock_guard<std::mutex> guard{mtx};
    return {faults, faults_version.load(std::memory_order_relaxed)};
  }

  struct full_snapshot {
    fault_set faults;
    std::vector<fault_layer> layers;
    uint64_t version;
  };

  full_snapshot snapshot_all() const {
    std::lock_guard<std::mutex> guard{mtx};
    return {faults, layers, faults_version.load(std::memory_order_relaxed)};
  }

  // Copies the handles out, so that messages are sent without the lock held:
  // a send from a shard thread may run the session at once (fast path), and
  // a session that exits takes the lock to deregister.
  std::vector<caf::actor> live_sessions() const {
    std::vector<caf::actor> out;
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [id, addr] : sessions)
      if (auto hdl = caf::actor_cast<caf::actor>(addr))
        out.push_back(std::move(hdl));
    return out;
  }
};

} // namespace detail

namespace {

using detail::fault_proxy_state;
using state_ptr = std::shared_ptr<fault_proxy_state>;
using clock_type = std::chrono::steady_clock;

// Session-internal messages (never leave the process; atoms, so no type
// registration is needed).
using changed_atom = caf::atom_constant<caf::atom("fp_change")>;
using tick_atom = caf::atom_constant<caf::atom("fp_tick")>;
using reset_timer_atom = caf::atom_constant<caf::atom("fp_rtimer")>;
using sever_atom = caf::atom_constant<caf::atom("fp_sever")>;
using upstream_failed_atom = caf::atom_constant<caf::atom("fp_upfail")>;

// Side 0 is the client socket, side 1 the upstream socket. Direction d reads
// side d and writes side 1 - d, so fault_direction::up (0) reads the client.
constexpr uint8_t client_side = 0;
constexpr uint8_t upstream_side = 1;

// A transport's messages, tagged with the side, forwarded to the session.
// One thin actor per socket because `data` does not name its transport (and
// on the fast path has no sender at all).
//
// `keep` holds the transport handle for as long as this actor object exists
// (it is a constructor argument, so a member of the pinned function actor,
// not part of the behavior that `quit` destroys). The transport holds this
// protocol until its own on_exit, so the pair stays alive while the
// transport is still inside the handler that delivers `lost`: if the last
// strong reference to a transport dropped there (the session lets go of it
// on `lost`), the transport would be freed under its own feet.
protocol_actor::behavior_type
relay_side(protocol_actor::pointer self, caf::actor session, uint8_t side,
           bool pause_first, std::shared_ptr<transport_actor> keep) {
  // The session owns the connection: if it ends, so does this protocol (a
  // normal end lets the transport flush and close, an error aborts it).
  self->monitor(session);
  self->set_down_handler(
      [self](caf::down_msg& msg) { self->quit(msg.reason); });
  return {
      [=](connected& msg) {
        *keep = msg.transport;
        // Sent from the connected handler, so the transport honours it
        // before its first read: the client is not read before the
        // upstream connection exists.
        if (pause_first) self->send(msg.transport, pause_reading{});
        caf::anon_send(session, side, std::move(msg));
      },
      [=](data& msg) {
        // Moving the message moves its read ticket: the transport's read
        // credit covers the bytes until the session handled them.
        caf::anon_send(session, side, std::move(msg));
      },
      [=](shardwire::eof) -> bool {
        // Always stay half-open: the session decides when to close, after
        // the other direction finished too.
        caf::anon_send(session, side, shardwire::eof{});
        return true;
      },
      [=](shardwire::pause) {
        caf::anon_send(session, side, shardwire::pause{});
      },
      [=](shardwire::resume) {
        caf::anon_send(session, side, shardwire::resume{});
      },
      [=](lost& msg) {
        caf::anon_send(session, side, std::move(msg));
        self->quit();
      },
  };
}

// Makes the transport's eventual close() send RST instead of FIN. The
// transport owns the fd and runs on this same shard thread, so it cannot
// close it while this runs; but it may have closed it already (its `lost` is
// then on its way to us) and the number may have been reused, so the
// addresses must still be those the transport reported.
void reset_on_close(const transport_info& info) {
  if (info.fd < 0) return;
  if (detail::local_endpoint(info.fd) != info.sockname ||
      detail::remote_endpoint(info.fd) != info.peername)
    return;
  ::linger lg{1, 0};
  ::setsockopt(info.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/// One relayed connection: both sockets' events, both fault pipelines.
class fault_session : public pinned<caf::event_based_actor> {
public:
  fault_session(caf::actor_config& cfg, state_ptr st, uint64_t id)
      : pinned(cfg), st_(std::move(st)), id_(id), rng_(st_->opts.seed + id) {
    auto snap = st_->snapshot_all();
    base_ = std::move(snap.faults);
    layers_ = std::move(snap.layers);
    version_ = snap.version;
    compose();
    std::lock_guard<std::mutex> guard{st_->mtx};
    st_->sessions.emplace(id_, this->address());
  }

  caf::behavior make_behavior() override {
    return {
        [this](uint8_t s, connected& msg) { on_connected(s, msg); },
        [this](uint8_t s, data& msg) { on_data(s, msg); },
        [this](uint8_t s, shardwire::eof) { on_eof(s); },
        [this](uint8_t s, shardwire::pause) { on_pause(s, true); },
        [this](uint8_t s, shardwire::resume) { on_pause(s, false); },
        [this](uint8_t s, lost& msg) { on_lost(s, msg); },
        [this](upstream_failed_atom, caf::error& err) {
          on_upstream_failed(err);
        },
        [this](tick_atom, uint8_t d) {
          dirs_[d].timer_armed = false;
          flush(d);
        },
        [this](reset_timer_atom, uint64_t gen) {
          if (gen == reset_gen_) end_session(timed_end(faults_).reset);
        },
        [this](changed_atom) {
          refresh_faults();
          flush(0);
          flush(1);
        },
        [this](sever_atom) { end_session(true); },
    };
  }

  void on_exit() override {
    {
      std::lock_guard<std::mutex> guard{st_->mtx};
      st_->sessions.erase(id_);
    }
    for (auto& side : sides_)
      side.t = nullptr;
    for (auto& dir : dirs_)
      dir.q.clear();
  }

private:
  struct piece {
    clock_type::time_point due;
    buffer bytes;
  };

  struct side_state {
    transport_actor t;
    transport_info info;
    bool connected = false;
    bool lost = false;
    bool read_paused = false;  // we sent pause_reading
    bool write_paused = false; // the transport sent `pause`
  };

  struct dir_state {
    std::deque<piece> q;
    size_t queued = 0;
    bool over_high = false;
    clock_type::time_point last_due{};
    clock_type::time_point link_free{};
    bool eof_in = false;  // the source ended (EOF or lost)
    bool eof_out = false; // nothing more goes to the sink
    bool timer_armed = false;
    clock_type::time_point timer_at{};
    uint64_t sent = 0; // bytes that left the proxy (cut/reset counting)
    // close_delay: when the held-back EOF may leave.
    std::optional<clock_type::time_point> eof_due;
  };

  // A connection's draw for one layer (see fault_layer).
  struct layer_draw {
    uint64_t generation = 0;
    bool applies = false;
    // For fault_layer::timers_from_first_data: when the first byte after
    // the layer started reached its direction.
    std::optional<clock_type::time_point> first_data;
  };

  // -- events ----------------------------------------------------------------

  void on_connected(uint8_t s, connected& msg) {
    auto& side = sides_[s];
    side.t = std::move(msg.transport);
    side.info = std::move(msg.info);
    side.connected = true;
    if (s == client_side) {
      side.read_paused = true; // the relay paused it (see relay_side)
      connect_upstream();
      return;
    }
    connect_pending_ = false;
    start_ = clock_type::now();
    if (ending_ || closing_) {
      send(side.t, shardwire::close{});
      return;
    }
    arm_reset_timer();
    flush(client_side);
    update_reading(client_side);
  }

  void connect_upstream() {
    auto& o = st_->opts;
    connect_options co;
    co.host = o.upstream_host;
    co.port = o.upstream_port;
    co.timeout = o.connect_timeout;
    co.shard = home().id(); // both sockets and this actor share one thread
    auto self = caf::actor_cast<caf::actor>(this);
    connect_pending_ = true;
    async_create_connection(
        *st_->rt, std::move(co),
        [self](shard& sh) -> protocol_actor {
          return spawn_fun_on(sh, relay_side, self, upstream_side, false,
                              std::make_shared<transport_actor>());
        },
        [self](caf::expected<connection> res) {
          // Success needs nothing: the relay forwards `connected`.
          if (!res)
            caf::anon_send(self, upstream_failed_atom::value, res.error());
        });
  }

  void on_upstream_failed(caf::error& err) {
    log::debug("fault proxy: upstream connect failed: ", describe(err));
    connect_pending_ = false;
    st_->upstream_failures.fetch_add(1, std::memory_order_relaxed);
    // The client sees its connection closed without data, as with
    // Toxiproxy when the upstream is down.
    close_all();
    maybe_quit();
  }

  void on_data(uint8_t s, data& msg) {
    refresh_faults();
    note_first_data(static_cast<fault_direction>(s));
    auto& dir = dirs_[s];
    auto n = msg.bytes.size();
    st_->received[s].fetch_add(n, std::memory_order_relaxed);
    if (ending_ || dir.eof_out || n == 0) return;
    const auto& spec = faults_[static_cast<fault_direction>(s)];
    if (spec.black_hole) {
      st_->swallowed[s].fetch_add(n, std::memory_order_relaxed);
      return;
    }
    schedule(s, spec, std::move(msg.bytes));
    flush(s);
    update_reading(s);
  }

  void on_eof(uint8_t s) {
    refresh_faults();
    if (faults_[static_cast<fault_direction>(s)].black_hole) {
      // Swallowed like the data: the sink never learns the source is done.
      return;
    }
    dirs_[s].eof_in = true;
    flush(s);
  }

  void on_pause(uint8_t s, bool paused) {
    // `pause` from side s: writes into s must wait. Direction 1 - s writes
    // into s, and reads side 1 - s.
    sides_[s].write_paused = paused;
    uint8_t d = 1 - s;
    if (!paused) flush(d);
    update_reading(d);
  }

  void on_lost(uint8_t s, lost& msg) {
    if (msg.reason)
      log::debug("fault proxy: side ", int{s}, " lost: ", describe(msg.reason));
    auto& side = sides_[s];
    side.lost = true;
    side.t = nullptr;
    // Nothing more can reach s.
    auto& into = dirs_[1 - s];
    into.q.clear();
    into.queued = 0;
    into.eof_out = true;
    // What was read from s still goes out, then EOF (see flush).
    dirs_[s].eof_in = true;
    if (!ending_) {
      flush(s);
      check_done();
    }
    maybe_quit();
  }

  // -- the pipeline ----------------------------------------------------------

  // Cuts `bytes` into pieces with their release times: slicing, latency +
  // jitter, slice delay, bandwidth. Release times never go backwards.
  void schedule(uint8_t d, const fault_spec& spec, buffer bytes) {
    auto& dir = dirs_[d];
    auto now = clock_type::now();
    auto delay = std::chrono::duration_cast<clock_type::duration>(spec.latency);
    if (spec.jitter.count() > 0) {
      std::uniform_int_distribution<int64_t> dist{-spec.jitter.count(),
                                                  spec.jitter.count()};
      delay += std::chrono::milliseconds(dist(rng_));
      if (delay < clock_type::duration::zero())
        delay = clock_type::duration::zero();
    }
    auto eligible = std::max(now + delay, dir.last_due);
    // With a bandwidth limit, pieces carry at most ~20 ms of traffic, so
    // the rate is smooth rather than one burst per chunk.
    size_t bw_piece = 0;
    if (spec.bandwidth > 0)
      bw_piece =
          static_cast<size_t>(std::max<uint64_t>(1, spec.bandwidth / 50));
    size_t off = 0;
    bool first = true;
    while (off < bytes.size()) {
      size_t n = bytes.size() - off;
      if (spec.slice_max > 0) {
        std::uniform_int_distribution<size_t> dist{
            std::max<size_t>(1, spec.slice_min), spec.slice_max};
        n = std::min(n, dist(rng_));
      }
      if (bw_piece > 0) n = std::min(n, bw_piece);
      auto due = eligible;
      if (!first && spec.slice_max > 0 && spec.slice_delay.count() > 0)
        due = std::max(due, dir.last_due + spec.slice_delay);
      if (spec.bandwidth > 0) {
        // The piece leaves once it was "transmitted" at the given rate.
        auto start = std::max(due, dir.link_free);
        auto tx = std::chrono::nanoseconds(static_cast<int64_t>(
            static_cast<long double>(n) * 1e9L / spec.bandwidth));
        due = start + std::chrono::duration_cast<clock_type::duration>(tx);
        dir.link_free = due;
      }
      due = std::max(due, dir.last_due);
      dir.last_due = due;
      dir.q.push_back(piece{due, bytes.slice(off, n)});
      dir.queued += n;
      off += n;
      first = false;
    }
  }

  // Releases every due piece of direction d while its sink can take it, then
  // arms the timer for the next one or forwards a pending EOF.
  void flush(uint8_t d) {
    auto& dir = dirs_[d];
    auto& sink = sides_[1 - d];
    if (ending_ || dir.eof_out) return;
    if (!sink.connected || sink.lost) return;
    auto now = clock_type::now();
    while (!dir.q.empty() && !sink.write_paused) {
      if (dir.q.front().due > now) break;
      auto p = std::move(dir.q.front());
      dir.q.pop_front();
      dir.queued -= p.bytes.size();
      if (!forward(d, std::move(p.bytes))) return; // cut or reset
    }
    if (!dir.q.empty()) {
      if (!sink.write_paused) arm_timer(d, dir.q.front().due, now);
    } else if (dir.eof_in) {
      // slow_close: the EOF waits close_delay after it would have left.
      auto delay = faults_[static_cast<fault_direction>(d)].close_delay;
      if (delay.count() > 0) {
        if (!dir.eof_due)
          dir.eof_due =
              now + std::chrono::duration_cast<clock_type::duration>(delay);
        if (*dir.eof_due > now) {
          arm_timer(d, *dir.eof_due, now);
          update_reading(d);
          return;
        }
      }
      dir.eof_out = true;
      send(sink.t, write_eof{});
      check_done();
    }
    update_reading(d);
  }

  // Writes one piece to the sink, honouring cut-after / reset-after. Returns
  // false if the session ended.
  bool forward(uint8_t d, buffer bytes) {
    auto& dir = dirs_[d];
    const auto& spec = faults_[static_cast<fault_direction>(d)];
    std::optional<uint64_t> limit;
    bool reset = false;
    if (spec.cut_after) limit = spec.cut_after;
    if (spec.reset_after && (!limit || *spec.reset_after <= *limit)) {
      limit = spec.reset_after;
      reset = true;
    }
    uint64_t n = bytes.size();
    bool end = false;
    if (limit && dir.sent + n >= *limit) {
      n = *limit > dir.sent ? *limit - dir.sent : 0;
      end = true;
    }
    if (n > 0) {
      auto out = n == bytes.size() ? std::move(bytes) : bytes.slice(0, n);
      dir.sent += n;
      st_->bytes[d].fetch_add(n, std::memory_order_relaxed);
      st_->writes[d].fetch_add(1, std::memory_order_relaxed);
      send(sides_[1 - d].t, shardwire::write{std::move(out)});
    }
    if (end) {
      end_session(reset);
      return false;
    }
    return true;
  }

  void arm_timer(uint8_t d, clock_type::time_point due,
                 clock_type::time_point now) {
    auto& dir = dirs_[d];
    // One timer per direction is enough: it fires for the earliest piece,
    // and the tick re-arms for the next. A later-armed earlier deadline
    // replaces the pending one (the stale tick only causes an extra flush).
    if (dir.timer_armed && dir.timer_at <= due) return;
    dir.timer_armed = true;
    dir.timer_at = due;
    auto wait = std::chrono::ceil<std::chrono::microseconds>(due - now);
    if (wait.count() < 0) wait = std::chrono::microseconds::zero();
    delayed_send(caf::actor_cast<caf::actor>(this), wait, tick_atom::value, d);
  }

  // -- flow control ----------------------------------------------------------

  void update_reading(uint8_t d) {
    auto& src = sides_[d];
    if (!src.connected || src.lost || ending_ || closing_) return;
    auto& dir = dirs_[d];
    auto& o = st_->opts;
    if (dir.queued > o.queue_high_water)
      dir.over_high = true;
    else if (dir.queued <= o.queue_low_water)
      dir.over_high = false;
    auto& sink = sides_[1 - d];
    bool want_pause =
        dir.over_high || sink.write_paused || (!sink.connected && !sink.lost);
    if (want_pause == src.read_paused) return;
    src.read_paused = want_pause;
    if (want_pause)
      send(src.t, pause_reading{});
    else
      send(src.t, resume_reading{});
  }

  // -- faults at run time ----------------------------------------------------

  void refresh_faults() {
    if (st_->faults_version.load(std::memory_order_acquire) == version_) return;
    auto snap = st_->snapshot_all();
    auto before = timed_end(faults_);
    base_ = std::move(snap.faults);
    layers_ = std::move(snap.layers);
    version_ = snap.version;
    compose();
    if (timed_end(faults_) != before) arm_reset_timer();
  }

  // Base faults plus the layers that apply to this connection, in order.
  void compose() {
    auto ref = sides_[upstream_side].connected ? start_ : clock_type::now();
    fault_set eff = base_;
    std::unordered_map<uint64_t, layer_draw> kept;
    for (auto& layer : layers_) {
      auto it = draws_.find(layer.id);
      layer_draw d;
      if (it != draws_.end() && it->second.generation == layer.generation)
        d = it->second;
      else
        d = layer_draw{layer.generation, draw(layer.toxicity), std::nullopt};
      kept[layer.id] = d;
      if (!d.applies) continue;
      auto spec = layer.spec;
      if (layer.timers_from_first_data) {
        auto off = d.first_data ? std::chrono::ceil<std::chrono::milliseconds>(
                                      *d.first_data - ref)
                                : std::chrono::milliseconds{0};
        for (auto* t : {&spec.cut_after_time, &spec.reset_after_time}) {
          if (!d.first_data)
            t->reset(); // not armed before the first byte
          else if (*t)
            **t += std::max(off, std::chrono::milliseconds{0});
        }
      } else if (layer.since > ref) {
        // Timers of a layer newer than the connection start with the layer.
        auto off =
            std::chrono::ceil<std::chrono::milliseconds>(layer.since - ref);
        for (auto* t : {&spec.cut_after_time, &spec.reset_after_time})
          if (*t) **t += off;
      }
      eff[layer.dir] = stack(eff[layer.dir], spec);
    }
    draws_ = std::move(kept);
    faults_ = eff;
  }

  // Data reached direction `d`: layers that count their timers from the
  // first byte start counting now (once per layer and draw).
  void note_first_data(fault_direction d) {
    bool changed = false;
    auto now = clock_type::now();
    for (auto& layer : layers_) {
      if (!layer.timers_from_first_data || layer.dir != d) continue;
      auto it = draws_.find(layer.id);
      if (it == draws_.end() || !it->second.applies || it->second.first_data)
        continue;
      it->second.first_data = now;
      changed = true;
    }
    if (!changed) return;
    auto before = timed_end(faults_);
    compose();
    if (timed_end(faults_) != before) arm_reset_timer();
  }

  // Toxicity 0 and 1 take no draw, so a proxy without partial toxicity
  // keeps the random sequence (jitter, slices) it always had.
  bool draw(double toxicity) {
    if (!(toxicity > 0.0)) return false;
    if (toxicity >= 1.0) return true;
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_) < toxicity;
  }

  // The earliest time-triggered end of the connection, and whether it is a
  // reset (RST) or a cut (FIN); a reset wins a tie.
  struct timed {
    std::optional<std::chrono::milliseconds> at;
    bool reset = true;
    friend bool operator==(const timed&, const timed&) = default;
  };

  static timed timed_end(const fault_set& f) {
    auto pick = [](const std::optional<std::chrono::milliseconds>& a,
                   const std::optional<std::chrono::milliseconds>& b) {
      if (a && b) return std::optional{std::min(*a, *b)};
      return a ? a : b;
    };
    auto r = pick(f.up.reset_after_time, f.down.reset_after_time);
    auto c = pick(f.up.cut_after_time, f.down.cut_after_time);
    if (r && (!c || *r <= *c)) return {r, true};
    return {c, false};
  }

  void arm_reset_timer() {
    ++reset_gen_; // any pending timer is now stale
    auto t = timed_end(faults_).at;
    if (!t || !sides_[upstream_side].connected || ending_) return;
    auto wait = std::chrono::ceil<std::chrono::microseconds>(start_ + *t -
                                                             clock_type::now());
    if (wait.count() < 0) wait = std::chrono::microseconds::zero();
    delayed_send(caf::actor_cast<caf::actor>(this), wait,
                 reset_timer_atom::value, reset_gen_);
  }

  // -- ending ----------------------------------------------------------------

  // Both directions forwarded their EOF (or their sink is gone): close what
  // is still open; each transport flushes first.
  void check_done() {
    if (dirs_[0].eof_out && dirs_[1].eof_out) close_all();
  }

  void close_all() {
    if (closing_) return;
    closing_ = true;
    for (auto& side : sides_)
      if (side.connected && !side.lost) send(side.t, shardwire::close{});
  }

  // Cut (FIN) or reset (RST) both sockets now; queued data is dropped. On a
  // cut, what was already written to a transport is flushed before its FIN.
  void end_session(bool reset) {
    if (ending_) return;
    ending_ = true;
    (reset ? st_->resets : st_->cuts).fetch_add(1, std::memory_order_relaxed);
    for (auto& dir : dirs_) {
      dir.q.clear();
      dir.queued = 0;
    }
    for (auto& side : sides_) {
      if (!side.connected || side.lost) continue;
      if (reset) {
        // RST discards what the kernel still holds anyway; abort also
        // drops the transport's buffer, so a stalled peer cannot hold the
        // socket open.
        reset_on_close(side.info);
        send(side.t, shardwire::abort{});
      } else {
        send(side.t, shardwire::close{});
      }
    }
    closing_ = true;
    maybe_quit();
  }

  void maybe_quit() {
    bool client_done =
        !sides_[client_side].connected || sides_[client_side].lost;
    // A connect still under way does not keep the session: once the client
    // is gone there is nothing to relay, and a late upstream connection's
    // relay monitors this (then dead) session and closes its transport.
    bool upstream_done = connect_pending_ || !sides_[upstream_side].connected ||
                         sides_[upstream_side].lost;
    if (client_done && upstream_done) quit();
  }

  state_ptr st_;
  uint64_t id_;
  std::mt19937_64 rng_;
  fault_set base_;                                 // the proxy's base faults
  std::vector<fault_layer> layers_;                // the proxy's layers
  std::unordered_map<uint64_t, layer_draw> draws_; // by layer id
  fault_set faults_; // in force for this connection
  uint64_t version_ = 0;
  std::array<side_state, 2> sides_;
  std::array<dir_state, 2> dirs_;
  clock_type::time_point start_{};
  uint64_t reset_gen_ = 0;
  bool connect_pending_ = false;
  bool closing_ = false; // close sent to every open side
  bool ending_ = false;  // cut or reset
};

} // namespace

// -- the handle --------------------------------------------------------------

std::string to_string(const fault_proxy_stats& x) {
  std::ostringstream out;
  out << "connections=" << x.connections << " live=" << x.live_connections
      << " upstream_failures=" << x.upstream_failures
      << " bytes_up=" << x.bytes_up << " bytes_down=" << x.bytes_down
      << " swallowed_up=" << x.swallowed_up
      << " swallowed_down=" << x.swallowed_down << " writes_up=" << x.writes_up
      << " writes_down=" << x.writes_down << " cuts=" << x.cuts
      << " resets=" << x.resets << " received_up=" << x.received_up
      << " received_down=" << x.received_down;
  return out.str();
}

caf::expected<fault_proxy> fault_proxy::start(runtime& rt,
                                              fault_proxy_options opts) {
  if (opts.upstream_port == 0)
    return make_error(sw_errc::invalid_argument, "upstream port 0");
  if (opts.queue_low_water > opts.queue_high_water ||
      opts.queue_high_water == 0)
    return make_error(sw_errc::invalid_argument, "queue water marks");
  auto st = std::make_shared<fault_proxy_state>();
  st->rt = &rt;
  st->faults = opts.faults;
  st->opts = std::move(opts);
  server_options so;
  so.hosts = {st->opts.listen_host};
  so.port = st->opts.listen_port;
  auto factory = [st](shard& s) -> protocol_actor {
    auto id = st->next_id.fetch_add(1, std::memory_order_relaxed);
    auto session = spawn_on<fault_session>(s, st, id);
    try {
      return spawn_fun_on(s, relay_side, session, client_side, true,
                          std::make_shared<transport_actor>());
    } catch (...) {
      // No relay, no events: the session would wait forever.
      caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
      throw;
    }
  };
  auto srv = create_server(rt, std::move(factory), std::move(so));
  if (!srv) return std::move(srv.error());
  fault_proxy result;
  result.state_ = std::move(st);
  result.server_ = srv->actor;
  if (!srv->sockets.empty()) result.address_ = srv->sockets.front();
  return result;
}

fault_proxy& fault_proxy::operator=(fault_proxy&& other) noexcept {
  if (this != &other) {
    stop();
    state_ = std::move(other.state_);
    server_ = std::move(other.server_);
    address_ = std::move(other.address_);
  }
  return *this;
}

fault_proxy::~fault_proxy() {
  stop();
}

void fault_proxy::update(const fault_set& faults) {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    state_->faults = faults;
    state_->faults_version.fetch_add(1, std::memory_order_release);
  }
  // Idle sessions learn of it now (a time-triggered reset must be armed
  // without waiting for data).
  for (auto& hdl : state_->live_sessions())
    caf::anon_send(hdl, changed_atom::value);
}

void fault_proxy::update(fault_direction dir, const fault_spec& spec) {
  auto f = faults();
  f[dir] = spec;
  update(f);
}

caf::error fault_proxy::set(std::string_view qualified_key,
                            std::string_view value) {
  if (!state_) return make_error(sw_errc::closed, "fault proxy stopped");
  // Read-modify-write under one lock, so two concurrent `set`s of
  // different fields both stick.
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    auto next = state_->faults;
    if (auto err = set_fault(next, qualified_key, value)) return err;
    state_->faults = next;
    state_->faults_version.fetch_add(1, std::memory_order_release);
  }
  for (auto& hdl : state_->live_sessions())
    caf::anon_send(hdl, changed_atom::value);
  return {};
}

void fault_proxy::clear() {
  update(fault_set{});
}

void fault_proxy::set_layers(std::vector<fault_layer> layers) {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    state_->layers = std::move(layers);
    state_->faults_version.fetch_add(1, std::memory_order_release);
  }
  for (auto& hdl : state_->live_sessions())
    caf::anon_send(hdl, changed_atom::value);
}

std::vector<fault_layer> fault_proxy::layers() const {
  if (!state_) return {};
  std::lock_guard<std::mutex> guard{state_->mtx};
  return state_->layers;
}

fault_set fault_proxy::faults() const {
  if (!state_) return {};
  return state_->snapshot().first;
}

fault_proxy_stats fault_proxy::stats() const {
  fault_proxy_stats x;
  if (!state_) return x;
  auto& st = *state_;
  auto get = [](const std::atomic<uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  x.connections = get(st.next_id);
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    x.live_connections = st.sessions.size();
  }
  x.upstream_failures = get(st.upstream_failures);
  x.bytes_up = get(st.bytes[0]);
  x.bytes_down = get(st.bytes[1]);
  x.swallowed_up = get(st.swallowed[0]);
  x.swallowed_down = get(st.swallowed[1]);
  x.writes_up = get(st.writes[0]);
  x.writes_down = get(st.writes[1]);
  x.cuts = get(st.cuts);
  x.resets = get(st.resets);
  x.received_up = get(st.received[0]);
  x.received_down = get(st.received[1]);
  return x;
}

void fault_proxy::sever_all() {
  if (!state_) return;
  for (auto& hdl : state_->live_sessions())
    caf::anon_send(hdl, sever_atom::value);
}

void fault_proxy::stop() {
  if (!state_) return;
  if (server_) caf::anon_send(server_, shardwire::close{});
  sever_all();
  state_.reset();
  server_ = nullptr;
}

void fault_proxy::stop_and_wait(std::chrono::milliseconds timeout) {
  if (!state_) return;
  auto st = state_;
  auto srv = server_;
  auto deadline = clock_type::now() + timeout;
  stop();
  if (srv) {
    // The listener closes its sockets in on_exit, before its down message.
    caf::scoped_actor self{st->rt->system()};
    self->monitor(srv);
    self->receive([](const caf::down_msg&) {},
                  caf::after(timeout) >>
                      [] {
                        log::warning(
                            "fault proxy: listener still open after stop");
                      });
  }
  // Sessions were severed; they end once both transports reported `lost`.
  // Nothing announces the last one, so poll briefly (only on this path).
  while (clock_type::now() < deadline) {
    {
      std::lock_guard<std::mutex> guard{st->mtx};
      if (st->sessions.empty()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// The language is parsed in fault_control.cpp (a pure function, fuzzed);
// here it only runs against the live proxy.
std::string fault_proxy::execute(std::string_view line) {
  auto cmd = parse_control_line(line);
  if (std::holds_alternative<control_noop>(cmd)) return "OK\n";
  auto err = [](std::string msg) { return "ERR " + msg + "\n"; };
  if (!state_) return err("proxy stopped");
  if (auto* x = std::get_if<control_error>(&cmd)) return err(x->message);
  if (auto* x = std::get_if<control_set>(&cmd)) {
    if (auto e = set(x->qualified_key, x->value)) return err(describe(e));
    return "OK\n";
  }
  if (auto* x = std::get_if<control_get>(&cmd))
    return get_fault(faults()[x->dir], x->key) + "\nOK\n";
  if (std::holds_alternative<control_faults>(cmd)) {
    auto f = faults();
    return "up: " + to_string(f.up) + "\ndown: " + to_string(f.down) + "\nOK\n";
  }
  if (std::holds_alternative<control_status>(cmd))
    return to_string(stats()) + "\nOK\n";
  if (std::holds_alternative<control_clear>(cmd)) {
    clear();
    return "OK\n";
  }
  if (std::holds_alternative<control_sever>(cmd)) {
    sever_all();
    return "OK\n";
  }
  // control_help, the only alternative left.
  return std::string{control_help_text()} + "OK\n";
}

} // namespace shardwire
