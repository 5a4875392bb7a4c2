#include "sim/detail/core.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "sim/detail/datagram_backend.hpp"
#include "sim/detail/stream_backend.hpp"
#include "sim/network.hpp"

#include <caf/scheduler/test_coordinator.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>

namespace shardwire::sim::detail {

namespace {

caf::scheduler::test_coordinator& sched(caf::actor_system& sys) {
  return dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
}

} // namespace

stream_settings sim_stream_settings(const tls_params& tls) {
  stream_settings s;
  s.read_chunk_size = 64 * 1024;
  s.read_high_water = 1024 * 1024;
  s.read_low_water = 256 * 1024;
  s.tls = tls;
  // The layer's timers run on wall-clock time; a simulation bounds its
  // handshakes with its own (virtual) faults and deadlines instead.
  s.tls.handshake_timeout = std::chrono::milliseconds{0};
  s.tls.shutdown_timeout = std::chrono::milliseconds{0};
  return s;
}

core::core(uint64_t seed_, size_t pipe_capacity_)
    : seed(seed_), pipe_capacity(pipe_capacity_), rng(seed_) {
  auto c = std::make_unique<config>();
  c->set("scheduler.policy", caf::atom("testing"));
  cfg = std::move(c);
  sys = std::make_unique<caf::actor_system>(*cfg);
  start_ = sched(*sys).clock().current_time;
}

core::~core() = default;

// -- time and events ----------------------------------------------------------

duration core::now() const {
  return std::chrono::duration_cast<duration>(sched(*sys).clock().current_time -
                                              start_);
}

void core::set_now(duration t) {
  auto& clk = sched(*sys).clock();
  auto target =
      start_ + std::chrono::duration_cast<caf::actor_clock::duration_type>(t);
  if (target > clk.current_time) clk.current_time = target;
}

void core::at(duration t, std::function<void()> fn) {
  queue.push_back(event{t, next_seq++, std::move(fn)});
  std::push_heap(queue.begin(), queue.end(), event_order{});
}

void core::post(size_t host, std::function<void()> fn) {
  hosts[host].sh->post(std::move(fn));
}

bool core::run_ready() {
  // Fast-path deliveries reuse this thread's mailbox elements; a shard
  // thread installs its own, the simulation thread installs the network's
  // while it runs the hosts (restored after: the thread may be a shard's).
  struct spares_scope {
    shardwire::detail::spare_store* prev;
    explicit spares_scope(shardwire::detail::spare_store* s)
        : prev(shardwire::detail::spares) {
      shardwire::detail::spares = s;
    }
    ~spares_scope() { shardwire::detail::spares = prev; }
  } installed{fast_path ? &spares : shardwire::detail::spares};
  bool any = false;
  auto& s = sched(*sys);
  for (;;) {
    bool progress = false;
    for (auto& h : hosts)
      if (!h.paused && h.sh->poll() > 0) progress = true;
    while (s.try_run_once())
      progress = true;
    if (!progress) break;
    any = true;
  }
  return any;
}

std::optional<duration> core::next_time() const {
  std::optional<duration> result;
  if (!queue.empty()) result = queue.front().at;
  auto& clk = sched(*sys).clock();
  if (!clk.schedule().empty()) {
    auto t = std::chrono::duration_cast<duration>(
        clk.schedule().begin()->first - start_);
    if (t < now()) t = now();
    if (!result || t < *result) result = t;
  }
  return result;
}

void core::step(duration t) {
  // Network events first at equal times (a fixed, documented tie rule).
  if (!queue.empty() && queue.front().at <= t) {
    std::pop_heap(queue.begin(), queue.end(), event_order{});
    auto ev = std::move(queue.back());
    queue.pop_back();
    set_now(ev.at);
    ev.fn();
    return;
  }
  auto& clk = sched(*sys).clock();
  auto dt = t - now();
  if (dt < duration::zero()) dt = duration::zero();
  clk.advance_time(
      std::chrono::duration_cast<caf::actor_clock::duration_type>(dt));
}

// -- trace
// ----------------------------------------------------------------------

uint64_t core::log(std::string what, uint64_t cause_id) {
  auto id = next_id++;
  trace.push_back(trace_event{now(), id, cause_id, std::move(what)});
  return id;
}

void core::fire(const std::string& fault, size_t a, size_t b) {
  ++fired[fault + " " + link_name(a, b)];
}

// -- hosts and links
// ------------------------------------------------------------

std::optional<size_t> core::find_host(const std::string& x) const {
  for (size_t i = 0; i < hosts.size(); ++i)
    if (hosts[i].name == x || hosts[i].addr.host == x) return i;
  return std::nullopt;
}

link_state& core::link(size_t a, size_t b) {
  auto i = links.find({a, b});
  if (i == links.end()) {
    link_state st;
    st.f = default_faults;
    i = links.emplace(std::make_pair(a, b), st).first;
  }
  return i->second;
}

std::string core::link_name(size_t a, size_t b) const {
  return hosts[a].name + "->" + hosts[b].name;
}

duration core::sample_latency(size_t a, size_t b) {
  auto& f = link(a, b).f;
  auto base = f.latency;
  auto j = static_cast<double>(f.jitter.count());
  if (j <= 0) return base;
  double extra = 0;
  switch (f.distribution) {
  case jitter_distribution::uniform:
    extra = static_cast<double>(rng.uniform(0, f.jitter.count()));
    break;
  case jitter_distribution::normal:
    extra = std::fabs(rng.normal(0, j));
    break;
  case jitter_distribution::exponential:
    extra = rng.exponential(j);
    break;
  case jitter_distribution::pareto:
    extra = std::min(rng.pareto(j / 3, 1.5), 20 * j);
    break;
  }
  fire("jitter", a, b);
  return base + duration{static_cast<int64_t>(std::llround(extra))};
}

duration core::transit(size_t a, size_t b, size_t n) {
  auto& ls = link(a, b);
  auto start = now();
  if (ls.f.bandwidth > 0) {
    if (ls.busy_until > start) start = ls.busy_until;
    auto ser = duration{static_cast<int64_t>(
        static_cast<double>(n) * 1e9 / static_cast<double>(ls.f.bandwidth))};
    start += ser;
    ls.busy_until = start;
    fire("bandwidth", a, b);
  }
  return start + sample_latency(a, b);
}

// -- streams
// ----------------------------------------------------------------------

namespace {

struct connect_state {
  connect_callback done;
  bool finished = false;
  uint64_t conn = 0;
  void finish(caf::expected<connection> r) {
    if (finished) return;
    finished = true;
    auto f = std::move(done);
    done = nullptr;
    if (f) f(std::move(r));
  }
};

} // namespace

void core::connect(size_t from, size_t to, uint16_t port, duration timeout,
                   protocol_factory factory, connect_callback done,
                   tls_params tls) {
  auto st = std::make_shared<connect_state>();
  st->done = std::move(done);
  auto id = log("connect " + hosts[from].name + " -> " + hosts[to].name + ":" +
                    std::to_string(port),
                cause);
  if (timeout > duration::zero())
    at(now() + timeout, [this, st, id] {
      if (st->finished) return;
      cause = log("connect timed out", id);
      if (st->conn != 0) reset_conn(st->conn, "connect timed out");
      st->finish(make_error(sw_errc::timeout, "simulated connect"));
    });
  auto& ls = link(from, to);
  if (ls.f.hang_connect) {
    fire("hang_connect", from, to);
    log("connect hangs (hang_connect fault)", id);
    return;
  }
  auto epoch = hosts[from].epoch;
  at(now() + sample_latency(from, to), [=, this, factory = std::move(factory)] {
    auto& l = link(from, to);
    if (l.blocked || l.held || !hosts[to].up) {
      if (l.blocked) fire("partition", from, to);
      log("SYN lost " + link_name(from, to), id);
      return; // no answer: the connect hangs (until its timeout)
    }
    bool refused = l.f.refuse_connect;
    if (refused) fire("refuse_connect", from, to);
    auto li = listeners.find({to, port});
    if (li == listeners.end()) refused = true;
    auto back = now() + sample_latency(to, from);
    if (refused) {
      auto rid = log(
          "connect refused " + hosts[to].name + ":" + std::to_string(port), id);
      at(back, [this, st, rid] {
        cause = rid;
        st->finish(make_errno_error(ECONNREFUSED, "simulated connect"));
      });
      return;
    }
    auto cid = next_conn++;
    st->conn = cid;
    stream_conn c;
    c.id = cid;
    c.host[0] = from;
    c.host[1] = to;
    c.epoch[0] = epoch;
    c.epoch[1] = hosts[to].epoch;
    c.ep[0] = hosts[from].addr;
    c.ep[0].port = hosts[from].next_port++;
    c.ep[1] = hosts[to].addr;
    c.ep[1].port = port;
    conns.emplace(cid, std::move(c));
    auto aid = log("accept conn " + std::to_string(cid) + " on " +
                       hosts[to].name + ":" + std::to_string(port),
                   id);
    cause = aid;
    spawn_on<stream_transport>(
        *hosts[to].sh, li->second.factory, sim_stream_settings(li->second.tls),
        connect_callback{}, transport_core::stream_direction::both, this, cid,
        1);
    at(back, [=, this] {
      cause = aid;
      if (st->finished) return; // timed out meanwhile (the RST is sent)
      if (!hosts[from].up || hosts[from].epoch != epoch) {
        reset_conn(cid, "client host crashed during connect");
        return;
      }
      log("connected conn " + std::to_string(cid), aid);
      spawn_on<stream_transport>(
          *hosts[from].sh, factory, sim_stream_settings(tls),
          connect_callback{
              [st](caf::expected<connection> r) { st->finish(std::move(r)); }},
          transport_core::stream_direction::both, this, cid, 0);
    });
  });
}

void core::attach(uint64_t conn, int side, stream_hooks* t,
                  std::shared_ptr<bool> alive) {
  auto i = conns.find(conn);
  if (i == conns.end()) return;
  i->second.t[side] = t;
  i->second.alive[side] = std::move(alive);
}

const stream_conn* core::find_conn(uint64_t conn) const {
  auto i = conns.find(conn);
  return i == conns.end() ? nullptr : &i->second;
}

int64_t core::write(uint64_t conn, int side, const buffer* parts, size_t n) {
  auto i = conns.find(conn);
  if (i == conns.end()) return -EPIPE;
  auto& c = i->second;
  if (c.error[side] != 0) return -c.error[side];
  if (c.vanished[side]) {
    // The host crashed: its actors are being killed, and what they write
    // while they die goes nowhere (a dead process sends nothing).
    size_t all = 0;
    for (size_t k = 0; k < n; ++k)
      all += parts[k].size();
    return static_cast<int64_t>(all);
  }
  auto& p = c.dir[side];
  auto used = p.in_flight + p.inbox_bytes;
  size_t room = used >= pipe_capacity ? 0 : pipe_capacity - used;
  size_t taken = 0;
  for (size_t k = 0; k < n && room > 0; ++k) {
    auto& part = parts[k];
    if (part.empty()) continue;
    auto take = std::min(room, part.size());
    auto piece = take == part.size() ? part : part.slice(0, take);
    p.in_flight += take;
    room -= take;
    taken += take;
    send_segment(c, side, std::move(piece), false);
    if (c.error[side] != 0) break; // cut_after reset it
  }
  return static_cast<int64_t>(taken);
}

void core::send_segment(stream_conn& c, int side, buffer bytes, bool fin,
                        duration extra) {
  auto a = c.host[side];
  auto b = c.host[1 - side];
  auto& ls = link(a, b);
  auto& p = c.dir[side];
  auto& f = ls.f;
  std::vector<buffer> pieces;
  if (!fin && f.slice_max > 0 && bytes.size() > 1) {
    size_t off = 0;
    while (off < bytes.size()) {
      auto len =
          std::min<size_t>(rng.uniform(1, f.slice_max), bytes.size() - off);
      pieces.push_back(bytes.slice(off, len));
      off += len;
    }
    if (pieces.size() > 1) fire("slice", a, b);
  } else {
    pieces.push_back(std::move(bytes));
  }
  auto conn_tag = "conn " + std::to_string(c.id) + " ";
  for (size_t k = 0; k < pieces.size(); ++k) {
    auto piece = std::move(pieces[k]);
    bool cut_now = false;
    if (!fin && f.cut_after) {
      if (p.crossed + piece.size() >= *f.cut_after) {
        auto keep = *f.cut_after - std::min(p.crossed, *f.cut_after);
        if (keep < piece.size()) {
          p.in_flight -= piece.size() - keep;
          piece = piece.slice(0, keep);
        }
        cut_now = true;
      }
    }
    p.crossed += piece.size();
    if (!fin && !piece.empty() && rng.chance(f.corrupt)) {
      std::string copy{piece.view()};
      auto at_byte = rng.uniform(0, copy.size() - 1);
      copy[at_byte] =
          static_cast<char>(copy[at_byte] ^ (1 << rng.uniform(0, 7)));
      piece = buffer::adopt(std::move(copy));
      fire("corrupt", a, b);
      log("corrupt " + conn_tag + "byte " + std::to_string(at_byte), cause);
    }
    auto t = transit(a, b, piece.size()) + extra +
             f.slice_gap * static_cast<int64_t>(k);
    if (fin && f.slow_close > duration::zero()) {
      t += f.slow_close;
      fire("slow_close", a, b);
    }
    if (t < p.last_arrival) t = p.last_arrival;
    p.last_arrival = t;
    held_entry e;
    e.from = a;
    e.to = b;
    e.stream = true;
    e.conn = c.id;
    e.side = side;
    e.fin = fin;
    e.bytes = std::move(piece);
    e.id = log("send " + link_name(a, b) + " " + conn_tag +
                   (fin ? std::string{"FIN"}
                        : std::to_string(e.bytes.size()) + " bytes"),
               cause);
    at(t, [this, e = std::move(e)]() mutable { arrive_segment(std::move(e)); });
    if (cut_now) {
      fire("cut_after", a, b);
      cause = log("cut " + conn_tag + "after " + std::to_string(p.crossed) +
                      " bytes",
                  cause);
      reset_conn(c.id, "cut_after");
      return;
    }
  }
}

void core::hold_or_deliver(held_entry e) {
  // Only called for messages that are due now.
  if (e.stream)
    arrive_segment(std::move(e));
  else
    arrive_datagram(std::move(e));
}

void core::arrive_segment(held_entry e) {
  auto i = conns.find(e.conn);
  if (i == conns.end()) return;
  auto& c = i->second;
  auto& p = c.dir[e.side];
  auto& ls = link(e.from, e.to);
  cause = e.id;
  if (!e.released && (ls.held || ls.blocked || p.stalled > 0)) {
    e.stalled = !ls.held;
    if (ls.blocked) fire("partition", e.from, e.to);
    if (ls.held) fire("hold", e.from, e.to);
    ++p.stalled;
    log(std::string{e.stalled ? "stall " : "hold "} + link_name(e.from, e.to) +
            " conn " + std::to_string(c.id),
        e.id);
    held.push_back(std::move(e));
    return;
  }
  int recv = 1 - e.side;
  if (!hosts[e.to].up || hosts[e.to].epoch != c.epoch[recv] ||
      c.vanished[recv]) {
    if (hosts[e.to].up && !c.reset_sent) {
      // A restarted host knows nothing of the connection: RST.
      log("segment to a restarted host: RST", e.id);
      reset_conn(c.id, "peer restarted");
    } else {
      log("segment to a dead host dropped", e.id);
    }
    return;
  }
  if (c.closed[recv]) {
    if (!e.fin && !e.bytes.empty() && !c.reset_sent) {
      log("data for a closed socket: RST", e.id);
      reset_conn(c.id, "data after close");
    }
    return;
  }
  if (e.fin) {
    p.fin_arrived = true;
    log("deliver " + link_name(e.from, e.to) + " conn " + std::to_string(c.id) +
            " FIN",
        e.id);
  } else {
    auto n = e.bytes.size();
    p.in_flight -= std::min<uint64_t>(p.in_flight, n);
    p.inbox_bytes += n;
    p.inbox.push_back(std::move(e.bytes));
    log("deliver " + link_name(e.from, e.to) + " conn " + std::to_string(c.id) +
            " " + std::to_string(n) + " bytes",
        e.id);
  }
  notify_readable(c, recv);
}

void core::notify_readable(stream_conn& c, int side) {
  if (c.t[side] == nullptr) return;
  post(c.host[side], [t = c.t[side], alive = c.alive[side]] {
    if (*alive) t->sim_readable();
  });
}

void core::notify_writable(stream_conn& c, int side) {
  if (c.t[side] == nullptr) return;
  post(c.host[side], [t = c.t[side], alive = c.alive[side]] {
    if (*alive) t->sim_writable();
  });
}

core::read_result core::read(uint64_t conn, int side, size_t max) {
  read_result r;
  auto i = conns.find(conn);
  if (i == conns.end()) {
    r.error = ECONNRESET;
    return r;
  }
  auto& c = i->second;
  if (c.error[side] != 0) {
    r.error = c.error[side];
    return r;
  }
  auto& p = c.dir[1 - side];
  if (!p.inbox.empty()) {
    auto& front = p.inbox.front();
    if (front.size() <= max) {
      r.bytes = std::move(front);
      p.inbox.pop_front();
    } else {
      r.bytes = front.slice(0, max);
      front = front.slice(max);
    }
    p.inbox_bytes -= r.bytes.size();
    notify_writable(c, 1 - side);
    return r;
  }
  if (p.fin_arrived) {
    r.eof = true;
    return r;
  }
  r.would_block = true;
  return r;
}

void core::shutdown_write(uint64_t conn, int side) {
  auto i = conns.find(conn);
  if (i == conns.end()) return;
  auto& c = i->second;
  auto& p = c.dir[side];
  if (p.fin_sent || c.error[side] != 0 || c.vanished[side]) return;
  p.fin_sent = true;
  send_segment(c, side, buffer{}, true);
}

void core::close_side(uint64_t conn, int side) {
  auto i = conns.find(conn);
  if (i == conns.end()) return;
  auto& c = i->second;
  if (c.closed[side]) return;
  c.closed[side] = true;
  c.t[side] = nullptr;
  c.alive[side] = nullptr;
  if (!c.vanished[side]) shutdown_write(conn, side);
  if (c.closed[0] && c.closed[1]) conns.erase(i);
}

void core::reset_conn(uint64_t conn, const char* why) {
  auto i = conns.find(conn);
  if (i == conns.end()) return;
  auto& c = i->second;
  if (c.reset_sent) return;
  c.reset_sent = true;
  auto rid = log("RST conn " + std::to_string(conn) + " (" + why + ")", cause);
  for (int side = 0; side < 2; ++side) {
    if (c.closed[side]) continue;
    auto t = now() + link(c.host[1 - side], c.host[side]).f.latency;
    at(t, [this, conn, side, rid] {
      auto j = conns.find(conn);
      if (j == conns.end()) return;
      auto& cc = j->second;
      if (cc.closed[side] || cc.error[side] != 0) return;
      cc.error[side] = ECONNRESET;
      cause = log("RST arrives at " + hosts[cc.host[side]].name + " conn " +
                      std::to_string(conn),
                  rid);
      notify_readable(cc, side);
      notify_writable(cc, side);
    });
  }
}

// -- held messages
// ------------------------------------------------------------------

void core::release_entry(size_t index) {
  auto e = std::move(held[index]);
  held.erase(held.begin() + static_cast<ptrdiff_t>(index));
  e.released = true;
  auto t = now() + sample_latency(e.from, e.to);
  if (e.stream) {
    auto i = conns.find(e.conn);
    if (i == conns.end()) return;
    auto& p = i->second.dir[e.side];
    if (p.stalled > 0) --p.stalled;
    if (t < p.last_arrival) t = p.last_arrival;
    p.last_arrival = t;
  }
  log("release #" + std::to_string(e.id) + " " + link_name(e.from, e.to),
      cause);
  at(t, [this, e = std::move(e)]() mutable { hold_or_deliver(std::move(e)); });
}

void core::release_stalled() {
  for (size_t k = 0; k < held.size();) {
    auto& e = held[k];
    if (e.stalled && !link(e.from, e.to).blocked)
      release_entry(k);
    else
      ++k;
  }
}

// -- datagrams
// ----------------------------------------------------------------------

void core::open_datagram(size_t host, uint16_t port,
                         std::optional<endpoint> remote,
                         datagram_protocol_factory factory,
                         datagram_callback done) {
  if (port == 0) {
    do {
      port = hosts[host].next_port++;
    } while (dsocks.count({host, port}) != 0);
  }
  if (dsocks.count({host, port}) != 0) {
    done(make_errno_error(EADDRINUSE, "simulated bind"));
    return;
  }
  dgram_socket s;
  s.host = host;
  s.port = port;
  s.ep = hosts[host].addr;
  s.ep.port = port;
  s.remote = std::move(remote);
  auto ep = s.ep;
  dsocks.emplace(std::make_pair(host, port), std::move(s));
  log("bind udp " + hosts[host].name + ":" + std::to_string(port), cause);
  auto peer = dsocks.at({host, port}).remote;
  spawn_on<datagram_transport>(*hosts[host].sh, std::move(factory),
                               sim_datagram_settings(peer.has_value()),
                               std::move(done), this, ep, peer);
}

void core::attach_datagram(const endpoint& ep, datagram_hooks* t,
                           std::shared_ptr<bool> alive) {
  auto h = find_host(ep.host);
  if (!h) return;
  auto i = dsocks.find({*h, ep.port});
  if (i == dsocks.end()) return;
  i->second.t = t;
  i->second.alive = std::move(alive);
}

int core::sendto(const endpoint& from, const buffer& bytes,
                 const endpoint& to) {
  auto a = find_host(from.host);
  auto b = find_host(to.host);
  if (!a) return EBADF;
  if (!hosts[*a].up) return 0; // sent by an actor of a crashing host: lost
  if (!b) {
    log("udp to unknown address " + to_string(to) + " dropped", cause);
    return 0;
  }
  auto& ls = link(*a, *b);
  auto& f = ls.f;
  auto id =
      log("sendto " + link_name(*a, *b) + " " + to_string(from) + " -> " +
              to_string(to) + " " + std::to_string(bytes.size()) + " bytes",
          cause);
  if (ls.blocked) {
    fire("partition", *a, *b);
    log("drop (partition)", id);
    return 0;
  }
  bool lost = rng.chance(f.loss);
  if (lost) fire("loss", *a, *b);
  if (f.burst.enabled()) {
    ls.ge_bad = ls.ge_bad ? !rng.chance(f.burst.p_leave_bad)
                          : rng.chance(f.burst.p_enter_bad);
    if (rng.chance(ls.ge_bad ? f.burst.loss_in_bad : f.burst.loss_in_good)) {
      if (!lost) fire("burst_loss", *a, *b);
      lost = true;
    }
  }
  if (lost) {
    log("drop (loss)", id);
    return 0;
  }
  int copies = 1;
  if (rng.chance(f.duplicate)) {
    fire("duplicate", *a, *b);
    copies = 2;
  }
  for (int k = 0; k < copies; ++k) {
    held_entry e;
    e.id = k == 0 ? id : log("duplicate", id);
    e.from = *a;
    e.to = *b;
    e.src = from;
    e.dst = to;
    e.bytes = bytes;
    if (rng.chance(f.corrupt) && !bytes.empty()) {
      std::string copy{bytes.view()};
      auto at_byte = rng.uniform(0, copy.size() - 1);
      copy[at_byte] =
          static_cast<char>(copy[at_byte] ^ (1 << rng.uniform(0, 7)));
      e.bytes = buffer::adopt(std::move(copy));
      fire("corrupt", *a, *b);
      log("corrupt byte " + std::to_string(at_byte), e.id);
    }
    auto t = transit(*a, *b, bytes.size());
    if (rng.chance(f.reorder)) {
      fire("reorder", *a, *b);
      t += f.reorder_delay;
      log("reorder (+" + format_time(f.reorder_delay) + ")", e.id);
    }
    at(t,
       [this, e = std::move(e)]() mutable { arrive_datagram(std::move(e)); });
  }
  return 0;
}

void core::arrive_datagram(held_entry d) {
  auto& ls = link(d.from, d.to);
  cause = d.id;
  if (!d.released && ls.held) {
    fire("hold", d.from, d.to);
    log("hold " + link_name(d.from, d.to) + " datagram", d.id);
    held.push_back(std::move(d));
    return;
  }
  if (ls.blocked) {
    fire("partition", d.from, d.to);
    log("drop in flight (partition)", d.id);
    return;
  }
  auto i = dsocks.find({d.to, d.dst.port});
  if (!hosts[d.to].up || i == dsocks.end()) {
    log("no socket at " + to_string(d.dst) + ": dropped", d.id);
    // ICMP port unreachable reaches a connected sender as ECONNREFUSED.
    auto back = find_host(d.src.host);
    if (back && hosts[d.to].up) {
      auto j = dsocks.find({*back, d.src.port});
      if (j != dsocks.end() && j->second.remote == d.dst && j->second.t) {
        auto t = now() + link(d.to, *back).f.latency;
        auto src = d.src;
        at(t, [this, src, b = *back] {
          auto k = dsocks.find({b, src.port});
          if (k == dsocks.end() || !k->second.t) return;
          log("ICMP port unreachable at " + to_string(src), cause);
          post(b, [t = k->second.t, alive = k->second.alive] {
            if (*alive) t->sim_error(ECONNREFUSED);
          });
        });
      }
    }
    return;
  }
  auto& s = i->second;
  if (s.remote && !(*s.remote == d.src)) {
    log("datagram from a non-peer dropped", d.id);
    return;
  }
  log("deliver " + link_name(d.from, d.to) + " datagram " +
          std::to_string(d.bytes.size()) + " bytes",
      d.id);
  s.inbox.emplace_back(std::move(d.bytes), d.src);
  if (s.t)
    post(d.to, [t = s.t, alive = s.alive] {
      if (*alive) t->sim_readable();
    });
}

std::optional<std::pair<buffer, endpoint>> core::recv(const endpoint& ep) {
  auto h = find_host(ep.host);
  if (!h) return std::nullopt;
  auto i = dsocks.find({*h, ep.port});
  if (i == dsocks.end() || i->second.inbox.empty()) return std::nullopt;
  auto x = std::move(i->second.inbox.front());
  i->second.inbox.pop_front();
  return x;
}

void core::close_datagram(const endpoint& ep) {
  auto h = find_host(ep.host);
  if (!h) return;
  dsocks.erase({*h, ep.port});
}

} // namespace shardwire::sim::detail
