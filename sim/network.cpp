#include "sim/network.hpp"

#include "actors/errors.hpp"
#include "sim/detail/core.hpp"

#include <caf/exit_reason.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <cstdio>
#include <stdexcept>

namespace shardwire::sim {

namespace {

size_t need_host(const detail::core& c, const std::string& name) {
  auto h = c.find_host(name);
  if (!h) throw std::invalid_argument("unknown simulated host: " + name);
  return *h;
}

} // namespace

std::string format_time(duration t) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.6fms",
                static_cast<double>(t.count()) / 1e6);
  return buf;
}

network::network(uint64_t seed, network_options opts)
    : core_(std::make_unique<detail::core>(seed, opts.pipe_capacity)) {
  if (opts.fast_path) {
    core_->fast_path = *opts.fast_path;
  } else {
    const char* env = std::getenv("SHARDWIRE_FAST_PATH");
    core_->fast_path = env == nullptr || std::string_view{env} != "0";
  }
  core_->owner = this;
  core_->log("network seed " + std::to_string(seed));
}

network::~network() {
  auto& c = *core_;
  // Kill every actor of every host, let them finish (their protocols get
  // `lost`), then stop the shards before the actor system goes.
  for (auto& h : c.hosts) {
    h.paused = false;
    h.sh->exit_actors(caf::exit_reason::user_shutdown, true);
  }
  c.run_ready();
  for (auto& h : c.hosts)
    h.sh->exit_actors(caf::exit_reason::user_shutdown, false);
  c.run_ready();
  c.queue.clear();
  c.listeners.clear();
  for (auto& h : c.hosts)
    h.sh->stop();
  // The actor system goes before the hosts: its clock still holds delayed
  // messages (a protocol's delayed_send, request timeouts) for actors pinned
  // to the hosts' shards, and shutting it down delivers or drops them
  // through those shards. A stopped shard only queues such a job and
  // releases it when it is destroyed, below.
  c.sys->await_actors_before_shutdown(false);
  c.sys.reset();
  c.hosts.clear();
}

uint64_t network::seed() const noexcept {
  return core_->seed;
}

random& network::rng() {
  return core_->rng;
}

caf::actor_system& network::system() {
  return *core_->sys;
}

// -- hosts --------------------------------------------------------------------

endpoint network::add_host(const std::string& name) {
  auto& c = *core_;
  if (c.find_host(name))
    throw std::invalid_argument("duplicate simulated host: " + name);
  detail::host_state h;
  h.name = name;
  h.addr.family = endpoint::kind::ipv4;
  h.addr.host = "10.0.0." + std::to_string(c.hosts.size() + 1);
  h.sh = std::make_unique<shard>(*c.sys, c.hosts.size(), 64);
  h.sh->set_fast_path(c.fast_path);
  h.sh->adopt_thread();
  c.hosts.push_back(std::move(h));
  c.log("host " + name + " up at " + c.hosts.back().addr.host);
  return c.hosts.back().addr;
}

void network::on_boot(const std::string& host,
                      std::function<void(network&)> boot) {
  auto h = need_host(*core_, host);
  core_->hosts[h].boot = boot;
  if (core_->hosts[h].up && boot) boot(*this);
}

endpoint network::address_of(const std::string& host) const {
  return core_->hosts[need_host(*core_, host)].addr;
}

std::vector<std::string> network::hosts() const {
  std::vector<std::string> out;
  for (auto& h : core_->hosts)
    out.push_back(h.name);
  return out;
}

shard& network::shard_of(const std::string& host) {
  return *core_->hosts[need_host(*core_, host)].sh;
}

void network::pause(const std::string& host) {
  auto h = need_host(*core_, host);
  core_->hosts[h].paused = true;
  core_->log("pause host " + host);
  ++core_->fired["pause " + host];
}

void network::resume(const std::string& host) {
  auto h = need_host(*core_, host);
  core_->hosts[h].paused = false;
  core_->log("resume host " + host);
}

void network::crash(const std::string& host) {
  auto& c = *core_;
  auto h = need_host(c, host);
  auto& hs = c.hosts[h];
  if (!hs.up) return;
  c.cause = c.log("crash host " + host);
  ++c.fired["crash " + host];
  hs.up = false;
  hs.paused = false;
  ++hs.epoch;
  for (auto& [id, conn] : c.conns)
    for (int side = 0; side < 2; ++side)
      if (conn.host[side] == h) conn.vanished[side] = true;
  for (auto i = c.listeners.begin(); i != c.listeners.end();)
    i = i->first.first == h ? c.listeners.erase(i) : std::next(i);
  hs.sh->exit_actors(caf::exit_reason::kill, false);
  c.run_ready();
  for (auto i = c.dsocks.begin(); i != c.dsocks.end();)
    i = i->first.first == h ? c.dsocks.erase(i) : std::next(i);
}

void network::restart(const std::string& host) {
  auto& c = *core_;
  auto h = need_host(c, host);
  if (c.hosts[h].up) return;
  c.hosts[h].up = true;
  c.cause = c.log("restart host " + host);
  if (c.hosts[h].boot) c.hosts[h].boot(*this);
}

// -- streams ------------------------------------------------------------------

caf::error network::listen(const std::string& host, uint16_t port,
                           protocol_factory factory, tls_params tls) {
  auto& c = *core_;
  auto h = c.find_host(host);
  if (!h) return make_error(sw_errc::unknown_host, host);
  if (c.listeners.count({*h, port}) != 0)
    return make_errno_error(EADDRINUSE, host + ":" + std::to_string(port));
  c.listeners.emplace(
      std::make_pair(*h, port),
      detail::core::listener_entry{std::move(factory), std::move(tls)});
  c.log("listen " + host + ":" + std::to_string(port), c.cause);
  return {};
}

void network::stop_listening(const std::string& host, uint16_t port) {
  auto& c = *core_;
  if (auto h = c.find_host(host)) c.listeners.erase({*h, port});
}

void network::async_create_connection(connect_options opts,
                                      protocol_factory factory,
                                      connect_callback done) {
  auto& c = *core_;
  auto a = c.find_host(opts.from);
  auto b = c.find_host(opts.to);
  if (!a || !b) {
    auto err = make_error(sw_errc::unknown_host, !a ? opts.from : opts.to);
    c.at(c.now(), [done = std::move(done), err] { done(err); });
    return;
  }
  if (opts.tls && opts.tls.server_hostname.empty())
    opts.tls.server_hostname = opts.to;
  c.connect(*a, *b, opts.port, opts.timeout, std::move(factory),
            std::move(done), std::move(opts.tls));
}

caf::expected<connection> network::create_connection(connect_options opts,
                                                     protocol_factory factory,
                                                     duration deadline) {
  std::optional<caf::expected<connection>> result;
  async_create_connection(
      std::move(opts), std::move(factory),
      [&result](caf::expected<connection> x) { result = std::move(x); });
  run_until([&] { return result.has_value(); }, deadline);
  if (!result) return make_error(sw_errc::timeout, "simulated connect");
  return std::move(*result);
}

void network::reset_connections(const std::string& a, const std::string& b) {
  auto& c = *core_;
  auto x = need_host(c, a);
  auto y = need_host(c, b);
  std::vector<uint64_t> ids;
  for (auto& [id, conn] : c.conns)
    if ((conn.host[0] == x && conn.host[1] == y) ||
        (conn.host[0] == y && conn.host[1] == x))
      ids.push_back(id);
  c.cause = c.log("reset connections " + a + " <-> " + b);
  for (auto id : ids) {
    ++c.fired["reset " + c.link_name(x, y)];
    c.reset_conn(id, "reset_connections");
  }
}

// -- datagrams ----------------------------------------------------------------

void network::async_create_datagram_endpoint(datagram_options opts,
                                             datagram_protocol_factory factory,
                                             datagram_callback done) {
  auto& c = *core_;
  auto h = c.find_host(opts.host);
  std::optional<endpoint> remote;
  if (opts.remote) {
    auto r = c.find_host(opts.remote->first);
    if (!r)
      h.reset();
    else {
      remote = c.hosts[*r].addr;
      remote->port = opts.remote->second;
    }
  }
  if (!h) {
    done(make_error(sw_errc::unknown_host, opts.host));
    return;
  }
  c.open_datagram(*h, opts.port, std::move(remote), std::move(factory),
                  std::move(done));
}

caf::expected<datagram_endpoint>
network::create_datagram_endpoint(datagram_options opts,
                                  datagram_protocol_factory factory,
                                  duration deadline) {
  std::optional<caf::expected<datagram_endpoint>> result;
  async_create_datagram_endpoint(
      std::move(opts), std::move(factory),
      [&result](caf::expected<datagram_endpoint> x) { result = std::move(x); });
  run_until([&] { return result.has_value(); }, deadline);
  if (!result) return make_error(sw_errc::timeout, "simulated bind");
  return std::move(*result);
}

// -- faults -------------------------------------------------------------------

link_faults& network::link(const std::string& a, const std::string& b) {
  return core_->link(need_host(*core_, a), need_host(*core_, b)).f;
}

void network::set_all_links(const link_faults& f) {
  auto& c = *core_;
  c.default_faults = f;
  for (size_t a = 0; a < c.hosts.size(); ++a)
    for (size_t b = 0; b < c.hosts.size(); ++b)
      if (a != b) c.link(a, b).f = f;
}

void network::partition_oneway(const std::vector<std::string>& from,
                               const std::vector<std::string>& to) {
  auto& c = *core_;
  std::string text = "partition {";
  for (auto& x : from)
    text += " " + x;
  text += " } -/-> {";
  for (auto& x : to)
    text += " " + x;
  c.log(text + " }");
  for (auto& x : from)
    for (auto& y : to)
      if (x != y) c.link(need_host(c, x), need_host(c, y)).blocked = true;
}

void network::partition(const std::vector<std::string>& a,
                        const std::vector<std::string>& b) {
  partition_oneway(a, b);
  partition_oneway(b, a);
}

namespace {

std::vector<std::string> shuffled(network& net) {
  auto all = net.hosts();
  for (size_t i = all.size(); i > 1; --i)
    std::swap(all[i - 1], all[net.rng().uniform(0, i - 1)]);
  return all;
}

} // namespace

void network::partition_halves() {
  auto all = shuffled(*this);
  auto mid = all.size() / 2;
  core_->log("nemesis: halves");
  partition({all.begin(), all.begin() + static_cast<ptrdiff_t>(mid)},
            {all.begin() + static_cast<ptrdiff_t>(mid), all.end()});
}

void network::isolate(const std::string& host) {
  auto all = hosts();
  auto victim = host;
  if (victim.empty()) victim = all[rng().uniform(0, all.size() - 1)];
  std::vector<std::string> rest;
  for (auto& h : all)
    if (h != victim) rest.push_back(h);
  core_->log("nemesis: isolate " + victim);
  partition({victim}, rest);
}

void network::partition_majorities_ring() {
  // Jepsen's majorities-ring: hosts on a ring (random order); each sees
  // itself and its nearest neighbours up to a bare majority, so every host
  // sees a majority but no two hosts the same one.
  auto ring = shuffled(*this);
  auto n = ring.size();
  auto reach = n / 2; // hosts seen on each side together: majority - 1
  core_->log("nemesis: majorities-ring");
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      auto d = std::min((i + n - j) % n, (j + n - i) % n);
      // Visible: ring distance <= ceil(reach / 2), a symmetric relation;
      // for odd n each host sees exactly a bare majority (tested for n = 5).
      bool visible = d <= (reach + 1) / 2;
      if (!visible)
        core_->link(need_host(*core_, ring[i]), need_host(*core_, ring[j]))
            .blocked = true;
    }
}

void network::partition_bridge() {
  // Two halves that can talk only through one bridge host.
  auto all = shuffled(*this);
  auto mid = all.size() / 2;
  std::vector<std::string> left{all.begin(),
                                all.begin() + static_cast<ptrdiff_t>(mid)};
  std::vector<std::string> right{all.begin() + static_cast<ptrdiff_t>(mid) + 1,
                                 all.end()};
  core_->log("nemesis: bridge via " + all[mid]);
  partition(left, right);
}

void network::heal() {
  auto& c = *core_;
  c.cause = c.log("heal");
  for (auto& [key, ls] : c.links)
    ls.blocked = false;
  c.release_stalled();
}

bool network::is_blocked(const std::string& a, const std::string& b) const {
  auto i = core_->links.find({need_host(*core_, a), need_host(*core_, b)});
  return i != core_->links.end() && i->second.blocked;
}

// -- hold and release ---------------------------------------------------------

void network::hold(const std::string& a, const std::string& b) {
  core_->link(need_host(*core_, a), need_host(*core_, b)).held = true;
  core_->log("hold " + a + "->" + b);
}

void network::unhold(const std::string& a, const std::string& b) {
  auto& c = *core_;
  auto x = need_host(c, a);
  auto y = need_host(c, b);
  c.link(x, y).held = false;
  c.cause = c.log("unhold " + a + "->" + b);
  for (size_t k = 0; k < c.held.size();) {
    auto& e = c.held[k];
    if (e.from == x && e.to == y && !e.stalled)
      c.release_entry(k);
    else
      ++k;
  }
}

std::vector<held_message> network::held() const {
  std::vector<held_message> out;
  for (auto& e : core_->held)
    out.push_back(held_message{
        e.id, core_->hosts[e.from].name, core_->hosts[e.to].name,
        e.stream ? (e.fin ? "fin" : "segment") : "datagram", e.bytes.size()});
  return out;
}

bool network::release(uint64_t id) {
  auto& c = *core_;
  auto i = std::find_if(c.held.begin(), c.held.end(),
                        [id](auto& e) { return e.id == id; });
  if (i == c.held.end()) return false;
  c.cause = c.log("release requested #" + std::to_string(id));
  if (i->stream) {
    // Older segments of the same direction go first (byte order).
    auto conn = i->conn;
    auto side = i->side;
    for (size_t k = 0; k < c.held.size();) {
      auto& e = c.held[k];
      bool same = e.stream && e.conn == conn && e.side == side;
      bool target = e.id == id;
      if (same) {
        c.release_entry(k);
        if (target) break;
      } else {
        ++k;
      }
    }
    return true;
  }
  c.release_entry(static_cast<size_t>(i - c.held.begin()));
  return true;
}

// -- running
// --------------------------------------------------------------------

duration network::now() const {
  return core_->now();
}

bool network::run_until(const std::function<bool()>& pred, duration deadline) {
  auto& c = *core_;
  auto limit = c.now() + deadline;
  for (;;) {
    c.run_ready();
    if (pred()) return true;
    auto next = c.next_time();
    if (!next || *next > limit) {
      c.set_now(limit);
      return pred();
    }
    c.step(*next);
  }
}

void network::run_for(duration d) {
  run_until([] { return false; }, d);
}

// -- trace --------------------------------------------------------------------

const std::vector<trace_event>& network::trace() const {
  return core_->trace;
}

std::string network::trace_text() const {
  std::string out;
  char prefix[96];
  for (auto& ev : core_->trace) {
    if (ev.cause != 0)
      std::snprintf(prefix, sizeof(prefix), "[%14s] #%llu <- #%llu ",
                    format_time(ev.at).c_str(),
                    static_cast<unsigned long long>(ev.id),
                    static_cast<unsigned long long>(ev.cause));
    else
      std::snprintf(prefix, sizeof(prefix), "[%14s] #%llu ",
                    format_time(ev.at).c_str(),
                    static_cast<unsigned long long>(ev.id));
    out += prefix;
    out += ev.what;
    out += '\n';
  }
  return out;
}

uint64_t network::note(const std::string& text) {
  return core_->log("note: " + text);
}

uint64_t network::fired(const std::string& name) const {
  auto& f = core_->fired;
  if (name.find(' ') != std::string::npos) {
    auto i = f.find(name);
    return i == f.end() ? 0 : i->second;
  }
  uint64_t sum = 0;
  for (auto& [k, v] : f)
    if (k.compare(0, name.size() + 1, name + " ") == 0) sum += v;
  return sum;
}

std::vector<std::string> network::unfired() const {
  auto& c = *core_;
  std::vector<std::string> out;
  auto check = [&](bool on, const char* fault, size_t a, size_t b) {
    if (!on) return;
    auto name = std::string{fault} + " " + c.link_name(a, b);
    if (fired(name) == 0) out.push_back(name);
  };
  for (auto& [key, ls] : c.links) {
    auto [a, b] = key;
    auto& f = ls.f;
    check(f.jitter > duration::zero(), "jitter", a, b);
    check(f.bandwidth > 0, "bandwidth", a, b);
    check(f.loss > 0, "loss", a, b);
    check(f.burst.enabled(), "burst_loss", a, b);
    check(f.duplicate > 0, "duplicate", a, b);
    check(f.reorder > 0, "reorder", a, b);
    check(f.corrupt > 0, "corrupt", a, b);
    check(f.slice_max > 0, "slice", a, b);
    check(f.cut_after.has_value(), "cut_after", a, b);
    check(f.slow_close > duration::zero(), "slow_close", a, b);
    check(f.refuse_connect, "refuse_connect", a, b);
    check(f.hang_connect, "hang_connect", a, b);
    check(ls.blocked, "partition", a, b);
    check(ls.held, "hold", a, b);
  }
  return out;
}

size_t network::live_actors() const {
  size_t n = 0;
  for (auto& h : core_->hosts)
    n += h.sh->live_actors();
  return n;
}

} // namespace shardwire::sim
