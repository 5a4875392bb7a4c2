#include "demos/kv_quorum/simulation.hpp"

#include "sim/linearizability.hpp"

#include <sstream>
#include <utility>

namespace kv_quorum {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// -- cluster ------------------------------------------------------------------

cluster::cluster(sim::network& net, cluster_options opts)
    : net_(net), opts_(std::move(opts)) {
  for (size_t i = 0; i < opts_.replicas; ++i) {
    auto host = replica_host(i);
    net_.add_host(host);
    auto d = std::make_shared<disk>();
    disks_.push_back(d);
    auto port = opts_.port;
    net_.on_boot(host, [host, port, d](sim::network& n) {
      (void)n.listen(host, port, replica_protocol(d));
    });
  }
  for (size_t i = 0; i < opts_.clients; ++i)
    net_.add_host(client_host(i));
  for (size_t i = 0; i < opts_.clients; ++i) {
    coordinator_options co;
    co.id = i + 1;
    co.replicas = opts_.replicas;
    co.phase_timeout = opts_.phase_timeout;
    co.op_deadline = opts_.op_deadline;
    co.stale_read_bug = opts_.stale_read_bug;
    auto* net = &net_;
    auto from = client_host(i);
    auto hosts = replica_hosts();
    auto port = opts_.port;
    auto timeout = opts_.phase_timeout;
    clients_.push_back(coordinator::make(
        co, [net] { return net->now(); },
        [net, from, hosts, port, timeout](size_t r,
                                          shardwire::protocol_factory f,
                                          std::function<void(bool)> done) {
          net->async_create_connection(
              {from, hosts[r], port, timeout}, std::move(f),
              [done](caf::expected<shardwire::connection> c) {
                done(static_cast<bool>(c));
              });
        }));
  }
  for (auto& c : clients_)
    c->poll(); // connect
}

cluster::~cluster() {
  for (auto& c : clients_)
    c->stop();
}

std::string cluster::replica_host(size_t i) const {
  return "r" + std::to_string(i + 1);
}

std::string cluster::client_host(size_t i) const {
  return "c" + std::to_string(i + 1);
}

std::vector<std::string> cluster::replica_hosts() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < opts_.replicas; ++i)
    out.push_back(replica_host(i));
  return out;
}

void cluster::run_for(nanoseconds d) {
  (void)run_until([] { return false; }, d);
}

bool cluster::run_until(const std::function<bool()>& pred, nanoseconds d) {
  auto end = net_.now() + d;
  while (!pred()) {
    auto now = net_.now();
    if (now >= end) return false;
    net_.run_for(std::min(opts_.tick, end - now));
    for (auto& c : clients_)
      c->poll();
  }
  return true;
}

std::optional<op_result> cluster::get(size_t i, const std::string& key) {
  auto out = std::make_shared<op_result>();
  auto done = std::make_shared<bool>(false);
  clients_[i]->async_get(key, [out, done](op_result r) {
    *out = std::move(r);
    *done = true;
  });
  return wait(i, out, done);
}

std::optional<op_result> cluster::put(size_t i, const std::string& key,
                                      const std::string& value) {
  auto out = std::make_shared<op_result>();
  auto done = std::make_shared<bool>(false);
  clients_[i]->async_put(key, value, [out, done](op_result r) {
    *out = std::move(r);
    *done = true;
  });
  return wait(i, out, done);
}

std::optional<op_result> cluster::wait(size_t, std::shared_ptr<op_result> out,
                                       std::shared_ptr<bool> done) {
  if (!run_until([&] { return *done; }, opts_.op_deadline + 2 * opts_.tick))
    return std::nullopt;
  return *out;
}

// -- one seed -----------------------------------------------------------------

namespace {

// A client of the random workload: one operation at a time, a random pause
// between them.
struct client_state {
  bool busy = false;
  nanoseconds next{0};
  uint64_t puts = 0;
};

nanoseconds ms(uint64_t n) {
  return std::chrono::milliseconds{n};
}

} // namespace

run_report run_seed(uint64_t seed, const run_options& opts) {
  run_report rep;
  sim::network net{seed};
  cluster_options co;
  co.replicas = opts.replicas;
  co.clients = opts.clients;
  co.stale_read_bug = opts.stale_read_bug;
  cluster cl{net, co};
  auto& rng = net.rng();
  auto& h = rep.history;
  std::vector<std::string> faults; // the schedule, for a failure report
  auto note = [&](const std::string& what) {
    net.note(what);
    faults.push_back("[" + sim::format_time(net.now()) + "] " + what);
  };

  auto hosts = net.hosts();
  auto set_latency = [&] {
    auto base = rng.uniform(1, 8);
    auto jitter = rng.uniform(0, 6);
    for (auto& a : hosts)
      for (auto& b : hosts)
        if (a != b) {
          auto& l = net.link(a, b);
          l.latency = ms(base + rng.uniform(0, 2));
          l.jitter = ms(jitter);
        }
    note("nemesis: latency " + std::to_string(base) + "-" +
         std::to_string(base + 2) + "ms, jitter " + std::to_string(jitter) +
         "ms");
  };
  set_latency();

  std::vector<std::string> keys;
  for (size_t k = 0; k < opts.keys; ++k)
    keys.push_back(std::string(1, static_cast<char>('a' + k % 26)) +
                   (k < 26 ? "" : std::to_string(k / 26)));
  std::vector<client_state> clients(opts.clients);
  std::vector<bool> crashed(opts.replicas, false);
  size_t down = 0;
  size_t max_down = (opts.replicas - 1) / 2;

  auto issue = [&](size_t c, const std::string& key, bool put) {
    auto& st = clients[c];
    st.busy = true;
    auto client = c + 1;
    auto on_done = [&net, &h, &st](uint64_t id, bool is_put, op_result r) {
      if (r.ok)
        h.complete_ok(id, is_put ? std::nullopt : r.value, net.now());
      else
        h.complete_unknown(id);
      st.busy = false;
    };
    if (put) {
      auto value = std::to_string(client) + "." + std::to_string(++st.puts);
      auto id = h.invoke(client, sim::call::put(key, value), net.now());
      cl.client(c).async_put(key, value, [on_done, id](op_result r) {
        on_done(id, true, std::move(r));
      });
    } else {
      auto id = h.invoke(client, sim::call::get(key), net.now());
      cl.client(c).async_get(key, [on_done, id](op_result r) {
        on_done(id, false, std::move(r));
      });
    }
  };

  // The random phase: operations and faults.
  auto next_fault = ms(rng.uniform(50, 300));
  while (net.now() < opts.duration) {
    auto now = net.now();
    if (now >= next_fault) {
      switch (rng.uniform(0, 7)) {
      case 0:
        net.partition_halves();
        note("nemesis: partition halves");
        break;
      case 1:
        net.isolate();
        note("nemesis: isolate one host");
        break;
      case 2:
        net.partition_majorities_ring();
        note("nemesis: majorities ring");
        break;
      case 3:
      case 4:
        net.heal();
        note("nemesis: heal");
        break;
      case 5: {
        if (down >= max_down) break;
        auto r = rng.uniform(0, opts.replicas - 1);
        if (crashed[r]) break;
        crashed[r] = true;
        ++down;
        net.crash(cl.replica_host(r));
        note("nemesis: crash " + cl.replica_host(r));
        break;
      }
      case 6:
        for (size_t r = 0; r < opts.replicas; ++r)
          if (crashed[r]) {
            crashed[r] = false;
            --down;
            net.restart(cl.replica_host(r));
            note("nemesis: restart " + cl.replica_host(r));
            break;
          }
        break;
      default:
        set_latency();
      }
      next_fault = now + ms(rng.uniform(50, 400));
    }
    for (size_t c = 0; c < clients.size(); ++c) {
      auto& st = clients[c];
      if (st.busy || now < st.next) continue;
      auto& key = keys[rng.uniform(0, keys.size() - 1)];
      issue(c, key, rng.chance(0.5));
      st.next = now + ms(rng.uniform(0, 30));
    }
    cl.run_for(co.tick);
  }

  // Heal everything; every client must then read every key.
  net.heal();
  for (size_t r = 0; r < opts.replicas; ++r)
    if (crashed[r]) {
      net.restart(cl.replica_host(r));
      note("nemesis: restart " + cl.replica_host(r));
    }
  note("nemesis: heal, end of faults");
  auto idle = [&] {
    for (auto& st : clients)
      if (st.busy) return false;
    return true;
  };
  (void)cl.run_until(idle, co.op_deadline + ms(100));
  std::string unavailable;
  for (size_t c = 0; c < clients.size() && unavailable.empty(); ++c)
    for (auto& key : keys) {
      issue(c, key, false);
      if (!cl.run_until(idle, co.op_deadline + ms(100)) ||
          h.operations().back().status != sim::op_status::ok) {
        unavailable = "client c" + std::to_string(c + 1) +
                      " could not read key " + key + " after the heal";
        break;
      }
    }

  auto ops = h.operations();
  size_t ok = 0, unknown = 0;
  for (auto& op : ops)
    (op.status == sim::op_status::ok ? ok : unknown) += 1;
  auto result = sim::check(ops, sim::kv_model());
  bool linearizable = result.outcome == sim::check_outcome::linearizable;
  rep.ok = linearizable && unavailable.empty();

  std::ostringstream sum;
  sum << "seed " << seed << ": " << ops.size() << " operations (" << ok
      << " ok, " << unknown << " unknown), " << faults.size() << " faults, "
      << opts.replicas << " replicas, " << opts.clients << " clients"
      << (opts.stale_read_bug ? ", bug stale-read" : "") << "\n";
  sum << "virtual time " << sim::format_time(net.now()) << ", "
      << net.trace().size() << " trace events\n";
  sum << "history: " << sim::to_string(result.outcome) << "\n";
  if (!unavailable.empty()) sum << "unavailable: " << unavailable << "\n";
  rep.summary = sum.str();
  if (!rep.ok) {
    std::ostringstream msg;
    msg << rep.summary;
    if (!linearizable) msg << result.report << "\n";
    msg << "fault schedule:\n";
    for (auto& f : faults)
      msg << "  " << f << "\n";
    rep.message = msg.str();
  }
  if (opts.keep_trace) rep.trace = net.trace_text();
  return rep;
}

} // namespace kv_quorum
