// A sharded key-value store across processes: protocol actors on a front
// node, storage actors on other nodes, CAF's middleman in between.
//
//   kv_cluster node  --port P [--host=127.0.0.1] [TLS]
//   kv_cluster front --port P --nodes HOST:PORT,HOST:PORT,... [--timeout-ms=N]
//                    [TLS]
//   TLS: --tls-cert=FILE --tls-key=FILE --tls-ca=FILE (all three or none)
//
// A storage node publishes one actor, "kv", on its port (actors/node.hpp).
// The front accepts TCP clients with shardwire's server; each connection is
// a line-framing protocol actor speaking
//
//   SET k v   -> OK
//   GET k     -> the value, or NIL
//   DEL k     -> OK (it existed) or NIL
//   PING      -> PONG
//
// A key lives on node fnv1a64(k) % N (N = the number of --nodes, in their
// order). Each request is a typed `kv_request` to a per-node link actor,
// which forwards it to the node's actor and tracks it: when the node dies or
// is cut off (CAF's down message), every request waiting on it is answered
// `ERR node unavailable` at once, and so is every new one until the node is
// back; a service watch looks the node up again with back-off. Replies on a
// connection keep the order of its requests. `ERR timeout` if a node does not
// answer within --timeout-ms, `ERR bad request` for anything else.
//
// With the three --tls-* options, the links between the front and the nodes
// run over TLS with mutual authentication (actors/node.hpp, enable_tls):
// every process of the cluster needs a certificate signed by the CA in
// --tls-ca. The front's clients still speak plain lines.
//
//   kv_cluster --simulate [--seed=K | --seeds=A-B ...] [--bug=stale-read]
//
// --simulate runs a replicated variant (an ABD quorum register per key on
// three replicas) on the simulated network under a random fault schedule
// per seed and checks every history for linearizability
// (demos/kv_quorum/, docs/distributed.md "Replication under the
// simulator").
//
//   kv_cluster replica --port P [--host=ADDR] [--data=FILE]
//   kv_cluster qfront  --port P --replicas HOST:PORT,... [--writer-id=N]
//                      [--timeout-ms=N] [--bug=stale-read]
//
// The same replicated variant as processes: replicas with a durable file
// and a front speaking the lines above through quorum coordinators
// (demos/kv_quorum/process.hpp, docs/distributed.md "As processes").
//
// The serving modes run until SIGINT/SIGTERM and print "Serving ..." on stderr
// once ready. docs/distributed.md explains the model.
#include "demos/kv_line_protocol.hpp"
#include "demos/kv_quorum/command.hpp"
#include "demos/kv_quorum/process.hpp"
#include "demos/metrics_option.hpp"
#include "demos/ordered_replies.hpp"
#include "demos/print.hpp"

#include "actors/errors.hpp"
#include "actors/node.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;

// -- the service's messages ---------------------------------------------------

namespace kv {

// `op` and the line parser live in kv_line_protocol.hpp (no CAF there, so a
// fuzz target can use them alone).

/// One request to a storage node.
struct request {
  op what = op::get;
  std::string key;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request& x) {
  auto what = static_cast<uint8_t>(x.what);
  if constexpr (Inspector::reads_state) {
    return f(caf::meta::type_name("kv::request"), what, x.key, x.value);
  } else {
    auto res = f(caf::meta::type_name("kv::request"), what, x.key, x.value);
    x.what = static_cast<op>(what);
    return res;
  }
}

/// A node's answer: GET's value, or whether SET/DEL found the key.
struct reply {
  bool found = false;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reply& x) {
  return f(caf::meta::type_name("kv::reply"), x.found, x.value);
}

/// A storage node's actor (published as "kv").
using store_actor = caf::typed_actor<caf::replies_to<request>::with<reply>>;

/// The front's per-node link: the store's interface plus the watch's news.
using link_actor = store_actor::extend<caf::reacts_to<service_up>,
                                       caf::reacts_to<service_down>>;

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

} // namespace kv

namespace {

// -- configuration ------------------------------------------------------------

// The front's request timeout: at least 1 ms (0 would time out every
// request), at most a day (twice it must fit a caf::timespan).
constexpr size_t max_timeout_ms = 24ull * 3600 * 1000;

struct kv_config : node_config {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string nodes;
  size_t timeout_ms = 2000;
  size_t heartbeat_ms = 500;
  double phi_threshold = 8.0;
  /// --tls-cert, --tls-key, --tls-ca: TLS on the node links.
  node_tls tls;
  /// --nodes, parsed by `validate`.
  std::vector<service_address> node_addrs;

  kv_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "address to listen on")
        .add(port, "port,p", "port to listen on (node: for the middleman)")
        .add(nodes, "nodes",
             "front: storage nodes as HOST:PORT,HOST:PORT,... (key order)")
        .add(timeout_ms, "timeout-ms", "front: per-request timeout in ms")
        .add(heartbeat_ms, "heartbeat-ms",
             "front: heartbeat to each node every N ms, judged by a "
             "phi-accrual detector (0: off, CAF's 5 s timeout alone)")
        .add(phi_threshold, "phi-threshold",
             "front: suspicion at which a node counts as down (0.5-50; "
             "lower detects sooner, with more false alarms)")
        .add(tls.cert_file, "tls-cert",
             "TLS on node links: this process's certificate (PEM), signed "
             "by --tls-ca; needs --tls-key and --tls-ca")
        .add(tls.key_file, "tls-key",
             "TLS on node links: the private key of --tls-cert (PEM)")
        .add(tls.ca_file, "tls-ca",
             "TLS on node links: the CA (PEM) that signs every node's and "
             "the front's certificate; peers must present one");
    add_message_type<kv::request>("kv::request");
    add_message_type<kv::reply>("kv::reply");
    add_message_type<kv::store_actor>("kv::store_actor");
  }

  /// Checks the options of `mode` ("node" or "front") and parses --nodes;
  /// prints one error line per problem (parse_args' validator).
  bool validate(const std::string& mode) {
    // Both modes: all three --tls-* or none, readable, matching, signed.
    bool ok = true;
    for (auto& p : check_node_tls(tls, openssl_passphrase))
      ok &= check_option(false, p.option, p.message);
    if (mode == "node")
      return check_option(nodes.empty(), "nodes", "only for front mode") && ok;
    ok &= check_option(timeout_ms >= 1 && timeout_ms <= max_timeout_ms,
                       "timeout-ms",
                       "must be 1-" + std::to_string(max_timeout_ms));
    ok &= check_option(heartbeat_ms == 0 ||
                           (heartbeat_ms >= 10 && heartbeat_ms <= 60000),
                       "heartbeat-ms", "must be 0 (off) or 10-60000");
    ok &= check_option(phi_threshold >= 0.5 && phi_threshold <= 50,
                       "phi-threshold", "must be 0.5-50");
    std::string_view rest = nodes;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{}
                                             : rest.substr(comma + 1);
      auto addr = parse_service_address(item, "kv");
      if (!addr) return check_option(false, "nodes", describe(addr.error()));
      node_addrs.push_back(std::move(*addr));
    }
    ok &= check_option(!node_addrs.empty(), "nodes",
                       "required in front mode: HOST:PORT,HOST:PORT,...");
    return ok;
  }
};

// CAF's middleman reports a failed listen as "tcp socket creation failed"
// and drops the OS's reason. Binding a socket the way it does (SO_REUSEADDR
// when `reuse`) finds the reason again; called only to explain a failure, so
// the race with whatever holds the port does not matter. Empty if the probe
// binds fine.
std::string bind_failure_reason(const std::string& host, uint16_t port,
                                bool reuse) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                             service.c_str(), &hints, &res);
      rc != 0)
    return std::string{::gai_strerror(rc)} + " (resolving the host)";
  std::string reason;
  for (auto* ai = res; ai != nullptr && reason.empty(); ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      reason = std::string{std::strerror(errno)} + " (socket)";
      continue;
    }
    int one = 1;
    if (reuse) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
      reason = std::string{std::strerror(errno)} + " (bind)";
    else if (::listen(fd, 1) != 0)
      reason = std::string{std::strerror(errno)} + " (listen)";
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return reason;
}

// CAF's parser wants --name=value; the documented command lines also use
// "--name value". Joins those pairs for the options that take a value.
std::vector<std::string> normalize_args(int argc, char** argv) {
  static const char* valued[] = {
      "--port",      "--nodes",     "--host",    "--timeout-ms", "--shards",
      "--log-level", "--tls-cert",  "--tls-key", "--tls-ca",     "--replicas",
      "--data",      "--writer-id", "--bug"};
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    bool join = false;
    for (auto* v : valued)
      if (arg == v) join = true;
    if (join && i + 1 < argc) {
      out.push_back(arg + "=" + argv[++i]);
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

// -- storage node -------------------------------------------------------------

struct store_state {
  std::unordered_map<std::string, std::string> map;
  static inline const char* name = "kv.store";
};

kv::store_actor::behavior_type
store(kv::store_actor::stateful_pointer<store_state> self) {
  return {
      [=](kv::request& req) -> kv::reply {
        auto& map = self->state.map;
        switch (req.what) {
        case kv::op::set:
          map[std::move(req.key)] = std::move(req.value);
          return {true, {}};
        case kv::op::get: {
          auto i = map.find(req.key);
          if (i == map.end()) return {false, {}};
          return {true, i->second};
        }
        case kv::op::del:
          return {map.erase(req.key) > 0, {}};
        }
        return {false, {}};
      },
  };
}

int run_node(kv_config& cfg) {
  caf::actor_system sys{cfg};
  auto kv_store = sys.spawn(store);
  int rc = 0;
  {
    node n{sys};
    n.add("kv", kv_store);
    auto port = n.publish(cfg.port, cfg.host);
    if (!port) {
      auto why = bind_failure_reason(cfg.host, cfg.port, true);
      demo::eprintln("error: cannot publish on ", cfg.host, ":", cfg.port, ": ",
                     (why.empty() ? describe(port.error()) : why));
      rc = 1;
    } else {
      demo::eprintln("Serving kv node on ", cfg.host, ":", *port);
      runtime::wait_for_stop_signal();
      demo::eprintln("Shutting down");
    }
  }
  caf::anon_send_exit(kv_store, caf::exit_reason::user_shutdown);
  return rc;
}

// -- front: one link actor per storage node -----------------------------------

struct link_state {
  size_t index = 0;
  std::string where;
  caf::timespan timeout{0};
  kv::store_actor service;
  uint64_t next_id = 0;
  /// Requests forwarded to `service` and not answered yet.
  std::map<uint64_t, caf::typed_response_promise<kv::reply>> pending;
  static inline const char* name = "kv.link";
};

caf::error unavailable(const link_state& st) {
  return make_error(sw_errc::node_unavailable, st.where);
}

kv::link_actor::behavior_type
link(kv::link_actor::stateful_pointer<link_state> self, size_t index,
     std::string where, caf::timespan timeout) {
  self->state.index = index;
  self->state.where = std::move(where);
  self->state.timeout = timeout;
  return {
      [=](kv::request& req) -> caf::result<kv::reply> {
        auto& st = self->state;
        if (!st.service) return unavailable(st); // fail fast while down
        auto rp = self->make_response_promise<kv::reply>();
        auto id = st.next_id++;
        st.pending.emplace(id, rp);
        self->request(st.service, st.timeout, std::move(req))
            .then(
                [=](kv::reply& r) {
                  auto& pending = self->state.pending;
                  if (auto i = pending.find(id); i != pending.end()) {
                    i->second.deliver(std::move(r));
                    pending.erase(i);
                  }
                },
                [=](caf::error& err) {
                  auto& pending = self->state.pending;
                  if (auto i = pending.find(id); i != pending.end()) {
                    i->second.deliver(std::move(err));
                    pending.erase(i);
                  }
                });
        return rp;
      },
      [=](service_up& up) {
        auto& st = self->state;
        st.service = caf::actor_cast<kv::store_actor>(up.actor);
        demo::eprintln("node ", st.index, " (", st.where, ") up");
      },
      [=](service_down& down) {
        auto& st = self->state;
        st.service = nullptr;
        // Whoever waits on the lost node is answered now, not at its timeout.
        auto pending = std::move(st.pending);
        st.pending.clear();
        for (auto& kvp : pending)
          kvp.second.deliver(unavailable(st));
        demo::eprintln("node ", st.index, " (", st.where, ") unavailable (",
                       to_string(down.cause), "): ", describe(down.reason));
      },
  };
}

// -- front: the client protocol -----------------------------------------------

std::string render(const caf::error& err) {
  if (is(err, sw_errc::node_unavailable)) return "ERR node unavailable";
  if (err.category() == caf::atom("system") &&
      static_cast<caf::sec>(err.code()) == caf::sec::request_timeout)
    return "ERR timeout";
  return "ERR " + describe(err);
}

/// One client connection: lines in, one reply line per request line out, in
/// request order even when nodes answer out of order.
class front_protocol : public protocol {
public:
  front_protocol(std::vector<kv::link_actor> links, caf::timespan timeout)
      : links_(std::move(links)), timeout_(timeout) {}

  void data_received(const buffer& bytes) override {
    if (too_long_) return; // closing once the earlier replies are out
    bool fits = lines_.feed(bytes.view(),
                            [this](std::string_view line) { on_line(line); });
    if (!fits) {
      // Answers what came before the long line, then the error, then closes.
      replies_.push_ready("ERR line too long");
      too_long_ = true;
      replies_.close_when_answered();
    }
    flush();
  }

  /// The client half-closed: every request that arrived before is still
  /// answered (an unterminated last line counts as a line), then the
  /// connection closes once the last reply is written.
  bool eof_received() override {
    if (!too_long_)
      lines_.finish([this](std::string_view line) { on_line(line); });
    flush();
    // Returning false closes the transport now (after the writes above);
    // otherwise the flush after the last reply closes it.
    replies_.close_when_answered();
    return !replies_.empty();
  }

private:
  void on_line(std::string_view line) {
    if (too_long_ || transport().is_closing()) return;
    auto parsed = kv::parse_line(line);
    if (parsed.kind == kv::parsed_line::ping) {
      replies_.push_ready("PONG");
      return;
    }
    if (parsed.kind != kv::parsed_line::request) {
      replies_.push_ready("ERR bad request");
      return;
    }
    kv::request req{parsed.what, std::move(parsed.key),
                    std::move(parsed.value)};
    auto seq = replies_.push_pending();
    auto what = req.what;
    auto& target = links_[kv::fnv1a(req.key) % links_.size()];
    self()
        ->request(target, timeout_ * 2, std::move(req))
        .then(
            [this, seq, what](kv::reply& r) {
              if (what == kv::op::get)
                fill(seq, r.found ? std::move(r.value) : "NIL");
              else
                fill(seq, r.found || what == kv::op::set ? "OK" : "NIL");
            },
            [this, seq](caf::error& err) { fill(seq, render(err)); });
  }

  void fill(uint64_t seq, std::string text) {
    replies_.fill(seq, std::move(text));
    flush();
  }

  /// Writes the answered prefix of the replies; closes once nothing more
  /// will be answered (after EOF or a too-long line).
  void flush() { replies_.flush(transport()); }

  std::vector<kv::link_actor> links_;
  caf::timespan timeout_;
  kv::line_reader lines_;
  /// A line passed line_reader's bound: no more requests are read.
  bool too_long_ = false;
  demo::ordered_replies<> replies_;
};

int run_front(kv_config& cfg) {
  const auto& addrs = cfg.node_addrs;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  auto& sys = rt.system();
  auto timeout = caf::timespan{std::chrono::milliseconds(cfg.timeout_ms)};
  heartbeat_policy heartbeats;
  heartbeats.interval = std::chrono::milliseconds(cfg.heartbeat_ms);
  heartbeats.phi.threshold = cfg.phi_threshold;
  // A loaded machine (a sanitizer run, a busy node) may pause a second: no
  // suspicion for that (a stopped node is still found in about 2 s).
  heartbeats.phi.acceptable_pause = std::chrono::milliseconds(1000);
  std::vector<kv::link_actor> links;
  for (size_t i = 0; i < addrs.size(); ++i) {
    auto l = sys.spawn(link, i, to_string(addrs[i]), timeout);
    spawn_service_watch(sys, caf::actor_cast<caf::actor>(l), addrs[i],
                        sys.message_types<kv::store_actor>(), {}, heartbeats);
    links.push_back(l);
  }
  server_options opts;
  opts.hosts = {cfg.host};
  opts.port = cfg.port;
  // Request/response: a client that pipelines without reading the replies
  // is not read further until it does, so it cannot grow the front.
  opts.reads_follow_writes = true;
  auto srv =
      create_server(rt, make_protocol<front_protocol>(links, timeout), opts);
  int rc = 0;
  if (!srv) {
    demo::eprintln("error: cannot serve on ", cfg.host, ":", cfg.port, ": ",
                   describe(srv.error()));
    rc = 1;
  } else {
    for (auto& ep : srv->sockets)
      demo::eprintln("Serving on ", to_string(ep), " with ", rt.shard_count(),
                     " shard(s), ", addrs.size(), " node(s)");
    // Type=notify under systemd: ready now (a no-op elsewhere).
    runtime::notify_ready("serving on " + to_string(srv->sockets.front()));
    runtime::wait_for_stop_signal();
    demo::eprintln("Shutting down");
  }
  // The links (and with them their watches) run on CAF's scheduler: they go
  // before the runtime (runtime.hpp, shutdown step 4).
  for (auto& l : links)
    caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  rt.shutdown();
  return rc;
}

void usage(std::ostream& out) {
  out << "usage: kv_cluster node  --port P [--host=ADDR] [TLS]\n"
         "       kv_cluster front --port P --nodes HOST:PORT,... "
         "[--timeout-ms=N] [TLS]\n"
      << kv_quorum::process_usage()
      << "       kv_cluster --simulate [--seed=K | --seeds=A-B [--jobs=N] "
         "[--sweep-seconds=S] [--determinism]] [--bug=stale-read]\n"
         "       kv_cluster MODE --help   (all options of a mode)\n"
         "TLS on node links: --tls-cert=FILE --tls-key=FILE --tls-ca=FILE "
         "(all three)\n"
         "Clients speak lines: SET k v | GET k | DEL k | PING\n";
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 1;
  }
  std::string mode = argv[1];
  if (mode == "--help" || mode == "-h") {
    usage(std::cerr); // --help goes to stderr in every shardwire program
    return 0;
  }
  // The replicated store under the simulator (demos/kv_quorum/command.hpp).
  if (mode == "--simulate") return kv_quorum::simulate_main(argc, argv);
  bool quorum = mode == "replica" || mode == "qfront";
  if (mode != "node" && mode != "front" && !quorum) {
    demo::eprintln("error: unknown mode '", mode, "'");
    usage(std::cerr);
    return 1;
  }
  // The mode word stands in for the program name in CAF's parser.
  auto args = normalize_args(argc - 1, argv + 1);
  std::vector<char*> cargs;
  for (auto& a : args)
    cargs.push_back(a.data());
  // The replicated store as processes (demos/kv_quorum/process.hpp).
  if (quorum)
    return kv_quorum::process_main(mode, static_cast<int>(cargs.size()),
                                   cargs.data());
  kv_config cfg;
  if (auto rc = parse_args(cfg, static_cast<int>(cargs.size()), cargs.data(),
                           [&] { return cfg.validate(mode); }))
    return *rc;
  // Checked by validate already; this loads CAF's openssl module.
  if (auto err = enable_tls(cfg, cfg.tls)) {
    demo::eprintln("error: ", describe(err));
    return 1;
  }
  return mode == "node" ? run_node(cfg) : run_front(cfg);
}
