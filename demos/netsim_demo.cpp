// A request/response service under a seeded fault schedule, on the
// simulated network (sim).
//
// One server ("db") answers "GET k" lines with "VAL k"; three clients send
// requests one per 200 ms of virtual time, retrying on a fresh connection
// when theirs is lost. The schedule: slicing on every link from the start,
// a partition isolating client c1 at 2 s, a one-way cut at 4 s, heal at
// 6 s, a connection reset at 7 s, and UDP heartbeats (with 20% loss) from
// every client to the server throughout. The program prints a timeline and
// a verdict: every client got an answer to each of its requests, in order,
// exactly once. The same --seed prints the same output, byte for byte.
//
// With --seeds the same run is swept over many seeds in parallel
// (sim/sweep.hpp): the program prints a summary whose last line is
// "passed: N of M seeds", names the lowest failing seed with the command
// that replays it, and exits 1 if one failed.
//
//   netsim_demo [--seed=N] [--requests=N (0-1000000)] [--trace]
//   netsim_demo --seeds=A-B|random:N[@BASE]|N [--jobs=N] [--sweep-seconds=S]
//               [--determinism] [--requests=N]
#include "demos/sweep_option.hpp"

#include "actors/config.hpp"
#include "actors/protocol.hpp"
#include "runtime/config.hpp"
#include "sim/network.hpp"
#include "sim/sweep.hpp"

#include <caf/send.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

// A count above what the 60 s tick cap lets a client finish (one request
// per 200 ms, so about 290) ends in a FAIL verdict, not an error; the bound
// only refuses absurd values.
constexpr int max_requests = 1000000;

struct demo_config : config {
  uint64_t seed = 1;
  int requests = 40;
  bool trace = false;
  demo::sweep_flags sweep;
  demo_config() {
    opt_group{custom_options_, "global"}
        .add(seed, "seed", "seed of the simulation (same seed, same run)")
        .add(requests, "requests,r", "requests per client")
        .add(trace, "trace,t", "print the full network trace at the end");
    sweep.declare(custom_options_,
                  "with --seeds: run each seed twice and compare output and "
                  "trace");
  }
};

// The server: answers each complete "GET k" line with "VAL k".
class kv_server : public protocol {
public:
  void data_received(const buffer& bytes) override {
    buf_ += bytes.str();
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      auto line = buf_.substr(0, pos);
      buf_.erase(0, pos + 1);
      if (line.rfind("GET ", 0) == 0)
        transport().write("VAL " + line.substr(4) + "\n");
    }
  }

private:
  std::string buf_;
};

// The timeline printed at the end. Shared (not a local of main) because
// client connections outlive main's loop: the network kills them in its
// destructor, and their connection_lost still reports. Once `close`d it
// records nothing and no longer reads the network's clock, so it is safe to
// use while and after the network is destroyed.
class timeline {
public:
  explicit timeline(const sim::network& net) : net_(&net) {}

  void add(const std::string& what) {
    if (net_)
      lines_.push_back("[" + sim::format_time(net_->now()) + "] " + what);
  }

  /// Stops recording; returns the lines recorded so far.
  std::vector<std::string> close() {
    net_ = nullptr;
    return std::move(lines_);
  }

private:
  const sim::network* net_;
  std::vector<std::string> lines_;
};

// What a client has seen, shared by its successive connections.
struct client_book {
  std::string name;
  int next = 0;             // next request to send
  std::vector<int> answers; // answers in arrival order
  int connections = 0;
  bool done = false;
  bool connected = false;
  /// Set when the run ends: the client sends nothing more and closes, so no
  /// timer of its is pending when the network is destroyed.
  bool stopped = false;
  std::shared_ptr<timeline> log;
};

// A client connection: sends the next unanswered request every 200 ms.
class kv_client : public protocol {
public:
  kv_client(std::shared_ptr<client_book> book, int total)
      : book_(std::move(book)), total_(total) {}

  void connection_made(transport_ref&) override {
    book_->connected = true;
    ++book_->connections;
    if (static_cast<int>(book_->answers.size()) >= total_) {
      book_->done = true; // --requests=0: nothing to ask
      transport().close();
      return;
    }
    // Resend what was not answered on the previous connection.
    book_->next = static_cast<int>(book_->answers.size());
    send_next();
  }

  void data_received(const buffer& bytes) override {
    buf_ += bytes.str();
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      auto line = buf_.substr(0, pos);
      buf_.erase(0, pos + 1);
      book_->answers.push_back(std::stoi(line.substr(4)));
      if (static_cast<int>(book_->answers.size()) == total_) {
        book_->done = true;
        transport().close();
        return;
      }
      send_next();
    }
  }

  void connection_lost(const caf::error& reason) override {
    book_->connected = false;
    if (!book_->done && !book_->stopped)
      book_->log->add(book_->name + ": connection lost (" +
                      (reason ? "reset" : "closed") + "), will reconnect");
  }

private:
  void send_next() {
    if (book_->stopped) {
      transport().close();
      return;
    }
    auto k = book_->next++;
    self()->delayed_send(
        transport().handle(), 200ms,
        shardwire::write{buffer::copy_of("GET " + std::to_string(k) + "\n")});
  }

  std::shared_ptr<client_book> book_;
  int total_;
  std::string buf_;
};

// UDP heartbeats: the server counts what arrives.
datagram_protocol_actor::behavior_type
heartbeat_sink(datagram_protocol_actor::pointer self,
               std::shared_ptr<std::map<std::string, int>> seen) {
  return {
      [](datagram_connected&) {},
      [=](datagram& d) { ++(*seen)[d.bytes.str()]; },
      [](datagram_error&) {},
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [=](lost&) { self->quit(); },
  };
}

datagram_protocol_actor::behavior_type
heartbeat_source(datagram_protocol_actor::pointer self) {
  return {
      [](datagram_connected&) {}, [](datagram&) {},
      [](datagram_error&) {},     [](shardwire::pause) {},
      [](shardwire::resume) {},   [=](lost&) { self->quit(); },
  };
}

// One run of the demo with `seed`: prints the timeline and verdict on
// `out`, stores the network trace in `trace` unless it is null, and returns
// the verdict. Runs on the calling thread, which owns the run's network.
bool run_demo(uint64_t seed, int requests, std::ostream& out,
              std::string* trace) {
  sim::network net{seed};
  auto log = std::make_shared<timeline>(net);
  auto say = [&](const std::string& what) {
    net.note(what);
    log->add(what);
  };
  std::vector<std::string> clients{"c1", "c2", "c3"};
  net.add_host("db");
  for (auto& c : clients)
    net.add_host(c);
  sim::link_faults f;
  f.latency = 2ms;
  f.jitter = 3ms;
  f.distribution = sim::jitter_distribution::exponential;
  f.slice_max = 3; // every request and answer arrives in tiny pieces
  net.set_all_links(f);
  for (auto& c : clients)
    net.link(c, "db").loss = 0.2; // heartbeats only: streams are reliable
  net.on_boot("db", [](sim::network& n) {
    (void)n.listen("db", 6379, make_protocol<kv_server>());
  });
  auto seen = std::make_shared<std::map<std::string, int>>();
  auto sink = net.create_datagram_endpoint(
      {"db", 9999, std::nullopt}, datagram_protocol_fun(heartbeat_sink, seen));
  std::map<std::string, datagram_transport_actor> beats;
  for (auto& c : clients) {
    auto ep = net.create_datagram_endpoint(
        {c, 0, std::make_pair(std::string{"db"}, uint16_t{9999})},
        datagram_protocol_fun(heartbeat_source));
    if (ep) beats[c] = ep->transport;
  }
  say("start: 3 clients, " + std::to_string(requests) +
      " requests each, seed " + std::to_string(seed));

  std::map<std::string, std::shared_ptr<client_book>> books;
  auto connect = [&](const std::string& c) {
    auto& book = books[c];
    net.async_create_connection({c, "db", 6379, 1s},
                                make_protocol<kv_client>(book, requests),
                                [log, c](caf::expected<connection> r) {
                                  if (!r) log->add(c + ": connect failed");
                                });
  };
  for (auto& c : clients) {
    auto b = std::make_shared<client_book>();
    b->name = c;
    b->log = log;
    books[c] = b;
    connect(c);
  }

  // The fault schedule, in virtual time; between steps the clients
  // reconnect when they lost their connection and heartbeats go out.
  struct step {
    sim::duration at;
    std::function<void()> act;
  };
  std::vector<step> schedule{
      {2s,
       [&] {
         net.isolate("c1");
         say("nemesis: isolate c1");
       }},
      {4s,
       [&] {
         net.partition_oneway({"db"}, {"c2"});
         say("nemesis: one-way cut db -/-> c2");
       }},
      {6s,
       [&] {
         net.heal();
         say("nemesis: heal");
       }},
      {7s,
       [&] {
         net.reset_connections("c3", "db");
         say("nemesis: reset c3 <-> db");
       }},
  };
  size_t next_step = 0;
  bool all_done = false;
  for (int tick = 0; tick < 600 && !all_done; ++tick) {
    auto until = sim::duration{std::chrono::milliseconds(100) * (tick + 1)};
    while (next_step < schedule.size() && schedule[next_step].at <= until) {
      net.run_for(schedule[next_step].at - net.now());
      schedule[next_step++].act();
    }
    net.run_for(until - net.now());
    if (tick % 5 == 0)
      for (auto& [c, hdl] : beats)
        caf::anon_send(hdl, sendto{buffer::copy_of(c), caf::none});
    all_done = true;
    for (auto& c : clients) {
      auto& b = *books[c];
      if (!b.done) all_done = false;
      if (!b.done && !b.connected && tick % 10 == 9) connect(c);
    }
  }
  say("end");
  // Unfinished clients stop at their next step (within 200 ms of virtual
  // time plus a round trip) and close; the second lets them.
  for (auto& [c, b] : books)
    b->stopped = true;
  net.run_for(1s);

  // Connections still open are killed with the network, after this point.
  for (auto& line : log->close())
    out << line << '\n';
  bool ok = true;
  for (auto& c : clients) {
    auto& b = *books[c];
    bool in_order = static_cast<int>(b.answers.size()) == requests;
    for (int i = 0; in_order && i < requests; ++i)
      in_order = b.answers[static_cast<size_t>(i)] == i;
    out << c << ": " << b.answers.size() << "/" << requests << " answers"
        << (in_order ? ", in order" : ", WRONG") << ", connections "
        << b.connections << ", heartbeats seen " << (*seen)[c] << '\n';
    ok = ok && in_order;
  }
  out << "faults fired: slice " << net.fired("slice") << ", partition "
      << net.fired("partition") << ", loss " << net.fired("loss") << ", reset "
      << net.fired("reset") << '\n';
  out << "virtual time " << sim::format_time(net.now()) << ", "
      << net.trace().size() << " trace events\n";
  out << "VERDICT: " << (ok ? "PASS" : "FAIL") << " (seed " << seed << ")\n";
  if (trace) *trace = net.trace_text();
  return ok;
}

// The lines of a run's output after its timeline: per-client counts, the
// faults and the verdict (what a failed seed reports).
std::string outcome_lines(const std::string& output) {
  std::istringstream in{output};
  std::string out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '[') out += line + '\n';
  return out;
}

// The sweep options, for parse_args' validator: --trace prints one run's
// trace, so not with --seeds.
bool check_sweep_options(const demo_config& cfg,
                         std::optional<sim::seed_set>& seeds) {
  bool ok = demo::check_sweep_flags(cfg, cfg.sweep, seeds);
  if (demo::option_given(cfg, "seeds"))
    ok &= check_option(!cfg.trace, "trace",
                       "prints one run's trace: not with --seeds (replay the "
                       "seed with --seed=N --trace)");
  return ok;
}

// --seeds: the demo's run over every seed, on --jobs threads.
int run_sweep(const demo_config& cfg, sim::seed_set seeds,
              const std::string& program) {
  auto requests = cfg.requests;
  auto opts = demo::make_sweep_options(
      cfg.sweep, std::move(seeds), program, [requests](uint64_t seed) {
        return " --seed=" + std::to_string(seed) +
               " --requests=" + std::to_string(requests);
      });
  auto result = sim::sweep(opts, [requests](uint64_t seed) {
    std::ostringstream out;
    std::string trace;
    bool ok = run_demo(seed, requests, out, &trace);
    auto output = out.str();
    auto message = ok ? std::string{} : outcome_lines(output);
    return sim::seed_outcome{ok, output + trace, std::move(message)};
  });
  std::cout << result.summary();
  return result.passed() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  demo_config cfg;
  std::optional<sim::seed_set> seeds;
  if (auto rc = parse_args(cfg, argc, argv, [&] {
        // Simulated hosts in virtual time: no real shard to measure.
        bool ok = refuse_metrics_option(cfg);
        ok &= check_sweep_options(cfg, seeds);
        return check_option(cfg.requests >= 0 && cfg.requests <= max_requests,
                            "requests",
                            "must be 0-" + std::to_string(max_requests)) &&
               ok;
      }))
    return *rc;
  if (seeds) return run_sweep(cfg, std::move(*seeds), argv[0]);
  std::string trace;
  bool ok =
      run_demo(cfg.seed, cfg.requests, std::cout, cfg.trace ? &trace : nullptr);
  if (cfg.trace) std::cout << trace;
  return ok ? 0 : 1;
}
