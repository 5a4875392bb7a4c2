#include "demos/kv_quorum/process.hpp"

#include "demos/kv_line_protocol.hpp"
#include "demos/kv_quorum/coordinator.hpp"
#include "demos/kv_quorum/disk_file.hpp"
#include "demos/kv_quorum/replica.hpp"
#include "demos/ordered_replies.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "runtime/shard.hpp"
#include "transports/tcp.hpp"

#include <asio/steady_timer.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace kv_quorum {

namespace {

using namespace std::chrono_literals;

// How often a qfront polls its coordinators, and a phase's resend timeout.
constexpr auto poll_interval = 10ms;
constexpr auto phase_timeout = 100ms;
constexpr size_t max_timeout_ms = 3600 * 1000;
constexpr uint64_t max_writer_id = (uint64_t{1} << 31) - 1;
constexpr size_t max_replicas = 15;

struct replica_address {
  std::string host;
  uint16_t port = 0;
};

struct process_config : shardwire::config {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string data;
  std::string replicas;
  uint64_t writer_id = 1;
  size_t timeout_ms = 1000;
  std::string bug;
  std::vector<replica_address> replica_addrs; // --replicas, parsed

  process_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "address to listen on")
        .add(port, "port,p", "port to listen on (0: any free port)")
        .add(data, "data",
             "replica: durable file (appended and fsync'd before each "
             "acknowledgement, replayed at start); without it the replica "
             "is memory-only and must NOT be restarted into the same "
             "cluster (ABD with an emptied replica can lose acknowledged "
             "writes)")
        .add(replicas, "replicas",
             "qfront: the replicas as HOST:PORT,HOST:PORT,... (all of the "
             "cluster; a majority must be up)")
        .add(writer_id, "writer-id",
             "qfront: this front's writer id, unique among the cluster's "
             "qfronts (1-2147483647)")
        .add(timeout_ms, "timeout-ms",
             "qfront: an operation not done after N ms answers ERR timeout "
             "(its outcome unknown)")
        .add(bug, "bug",
             "qfront: a deliberate bug for the checker to catch: stale-read "
             "(gets return one replica's answer)");
  }

  bool given(std::string_view name) const {
    return caf::get_if(&content, name) != nullptr;
  }

  bool validate(const std::string& mode) {
    using shardwire::check_option;
    bool ok = shardwire::refuse_metrics_option(*this);
    if (mode == "replica") {
      for (auto name : {"replicas", "writer-id", "timeout-ms", "bug"})
        if (given(name)) ok &= check_option(false, name, "only for qfront");
      // The disk is touched by every replica connection: one shard.
      ok &= check_option(!given("shards") || shards == 1, "shards",
                         "a replica runs one shard (its disk is not "
                         "thread-safe)");
      return ok;
    }
    if (given("data")) ok &= check_option(false, "data", "only for replica");
    ok &=
        check_option(writer_id >= 1 && writer_id <= max_writer_id, "writer-id",
                     "must be 1-" + std::to_string(max_writer_id));
    ok &= check_option(timeout_ms >= 1 && timeout_ms <= max_timeout_ms,
                       "timeout-ms",
                       "must be 1-" + std::to_string(max_timeout_ms));
    ok &= check_option(bug.empty() || bug == "stale-read", "bug",
                       "'" + bug +
                           "' is not a known bug; accepted: "
                           "stale-read");
    std::string_view rest = replicas;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{}
                                             : rest.substr(comma + 1);
      auto colon = item.rfind(':');
      uint32_t port = 0;
      auto digits = colon == std::string_view::npos ? std::string_view{}
                                                    : item.substr(colon + 1);
      auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), port);
      if (colon == std::string_view::npos || colon == 0 || digits.empty() ||
          ec != std::errc{} || end != digits.data() + digits.size() ||
          port == 0 || port > 65535)
        return check_option(false, "replicas",
                            "'" + std::string{item} +
                                "' is not HOST:PORT (port 1-65535)");
      std::string h{item.substr(0, colon)};
      if (h.size() > 2 && h.front() == '[' && h.back() == ']')
        h = h.substr(1, h.size() - 2);
      for (auto& a : replica_addrs)
        if (a.host == h && a.port == port)
          return check_option(false, "replicas",
                              "'" + std::string{item} + "' appears twice");
      replica_addrs.push_back({std::move(h), static_cast<uint16_t>(port)});
    }
    ok &= check_option(
        !replica_addrs.empty() && replica_addrs.size() <= max_replicas,
        "replicas",
        "required in qfront mode: 1-" + std::to_string(max_replicas) +
            " HOST:PORT items, comma-separated");
    return ok;
  }
};

// -- replica ------------------------------------------------------------------

int run_replica(process_config& cfg) {
  auto d = std::make_shared<disk>();
  std::unique_ptr<disk_file> file;
  if (!cfg.data.empty()) {
    std::string error;
    file = disk_file::open(cfg.data, *d, error);
    if (!file) {
      demo::eprintln("error: --data: ", error);
      return 1;
    }
    file->attach(*d);
  }
  // Read before the server starts: from then on only the shard touches the
  // disk (the main thread reading it later races with stores).
  auto keys = d->data.size();
  // One shard: the disk and its file are used by every replica connection
  // without a lock, so they all run on one thread (a mutex would serialize
  // the fsyncs just the same, and keep a second thread waiting on them).
  cfg.shards = 1;
  shardwire::runtime rt{cfg};
  shardwire::server_options opts;
  opts.hosts = {cfg.host};
  opts.port = cfg.port;
  opts.reads_follow_writes = true;
  auto srv = shardwire::create_server(rt, replica_protocol(d), opts);
  int rc = 0;
  if (!srv) {
    demo::eprintln("error: cannot serve on ", cfg.host, ":", cfg.port, ": ",
                   shardwire::describe(srv.error()));
    rc = 1;
  } else {
    std::string from =
        file ? std::to_string(file->replayed()) + " version(s) from " +
                   cfg.data +
                   (file->cut_torn_line() ? " (torn last line cut)" : "")
             : std::string{"memory only"};
    demo::eprintln("Serving kv replica on ",
                   shardwire::to_string(srv->sockets.front()), ", ", keys,
                   " key(s), ", from);
    shardwire::runtime::notify_ready("serving");
    shardwire::runtime::wait_for_stop_signal();
    demo::eprintln("Shutting down");
  }
  rt.shutdown(); // before `d` and `file` go: no connection uses them after
  return rc;
}

// -- qfront -------------------------------------------------------------------

struct qfront_settings {
  shardwire::runtime* rt = nullptr;
  std::vector<replica_address> replicas;
  coordinator_options base;
  std::atomic<uint64_t> connections{0};
};

// Polls one coordinator every `poll_interval` on its shard's io_context, as
// an I/O handler (outside any actor: poll opens connections).
struct ticker {
  ticker(shardwire::shard& s, std::shared_ptr<coordinator> c)
      : home(s), timer(s.io()), coord(std::move(c)) {}
  shardwire::shard& home;
  asio::steady_timer timer;
  std::shared_ptr<coordinator> coord;
  bool stopped = false;
};

void arm(std::shared_ptr<ticker> t, std::chrono::nanoseconds after) {
  auto* raw = t.get();
  raw->timer.expires_after(after);
  raw->timer.async_wait([t = std::move(t)](const std::error_code& ec) {
    if (ec || t->stopped) return;
    shardwire::shard::io_scope scope{t->home};
    t->coord->poll();
    arm(t, poll_interval);
  });
}

/// One client connection: lines in, one reply line per request out, in
/// order; requests go through this connection's coordinator one at a time.
class qfront_connection : public shardwire::protocol {
public:
  explicit qfront_connection(std::shared_ptr<qfront_settings> s)
      : settings_(std::move(s)) {}

  void connection_made(shardwire::transport_ref&) override {
    auto* home = shardwire::shard::current();
    auto opts = settings_->base;
    opts.id = opts.id * (uint64_t{1} << 32) + ++settings_->connections;
    auto* rt = settings_->rt;
    auto shard_id = home->id();
    auto replicas = settings_->replicas;
    auto start = std::chrono::steady_clock::now();
    coord_ = coordinator::make(
        opts, [start] { return std::chrono::steady_clock::now() - start; },
        [rt, shard_id, replicas](size_t i, shardwire::protocol_factory f,
                                 std::function<void(bool)> done) {
          shardwire::connect_options co;
          co.host = replicas[i].host;
          co.port = replicas[i].port;
          co.shard = shard_id; // the coordinator's thread
          co.timeout = std::chrono::milliseconds{500};
          shardwire::async_create_connection(
              *rt, co, std::move(f),
              [done = std::move(done)](caf::expected<shardwire::connection> c) {
                done(static_cast<bool>(c));
              });
        });
    ticker_ = std::make_shared<ticker>(*home, coord_);
    arm(ticker_, 0ns); // connects from the first poll, outside this actor
  }

  void data_received(const shardwire::buffer& bytes) override {
    if (too_long_) return;
    bool fits = lines_.feed(bytes.view(),
                            [this](std::string_view line) { on_line(line); });
    if (!fits) {
      replies_.push_ready("ERR line too long");
      too_long_ = true;
      replies_.close_when_answered();
    }
    next();
    flush();
  }

  bool eof_received() override {
    if (!too_long_)
      lines_.finish([this](std::string_view line) { on_line(line); });
    replies_.close_when_answered();
    next();
    flush();
    return !replies_.empty();
  }

  void connection_lost(const caf::error&) override {
    if (ticker_) {
      ticker_->stopped = true;
      ticker_->timer.cancel();
    }
    if (coord_) coord_->close(); // no callback into this object from now on
  }

private:
  // A request not started yet (its reply not ready).
  struct request {
    bool is_put = false;
    std::string key;
    std::string value;
  };

  void on_line(std::string_view line) {
    if (too_long_ || transport().is_closing()) return;
    auto parsed = kv::parse_line(line);
    if (parsed.kind == kv::parsed_line::ping) {
      replies_.push_ready("PONG");
    } else if (parsed.kind != kv::parsed_line::request) {
      replies_.push_ready("ERR bad request");
    } else if (parsed.what == kv::op::del) {
      replies_.push_ready("ERR unsupported");
    } else {
      request r;
      r.is_put = parsed.what == kv::op::set;
      r.key = std::move(parsed.key);
      r.value = std::move(parsed.value);
      replies_.push_pending(std::move(r));
    }
  }

  /// Starts the first request not yet answered, unless one runs.
  void next() {
    if (!coord_ || coord_->busy() || transport().is_closing()) return;
    auto [first, req] = replies_.first_unanswered();
    if (!req) return;
    bool is_put = req->is_put;
    auto done = [this, seq = first, is_put](op_result r) {
      if (!r.ok)
        replies_.fill(seq, "ERR timeout");
      else if (is_put)
        replies_.fill(seq, "OK");
      else
        replies_.fill(seq, r.value ? std::move(*r.value) : "NIL");
      next();
      flush();
    };
    if (is_put)
      coord_->async_put(std::move(req->key), std::move(req->value), done);
    else
      coord_->async_get(std::move(req->key), done);
  }

  void flush() { replies_.flush(transport()); }

  std::shared_ptr<qfront_settings> settings_;
  std::shared_ptr<coordinator> coord_;
  std::shared_ptr<ticker> ticker_;
  kv::line_reader lines_;
  bool too_long_ = false;
  demo::ordered_replies<request> replies_;
};

int run_qfront(process_config& cfg) {
  shardwire::runtime rt{cfg};
  auto settings = std::make_shared<qfront_settings>();
  settings->rt = &rt;
  settings->replicas = cfg.replica_addrs;
  settings->base.id = cfg.writer_id;
  settings->base.replicas = cfg.replica_addrs.size();
  settings->base.phase_timeout = phase_timeout;
  settings->base.op_deadline = std::chrono::milliseconds{cfg.timeout_ms};
  settings->base.stale_read_bug = cfg.bug == "stale-read";
  shardwire::server_options opts;
  opts.hosts = {cfg.host};
  opts.port = cfg.port;
  opts.reads_follow_writes = true;
  auto srv = shardwire::create_server(
      rt, shardwire::make_protocol<qfront_connection>(settings), opts);
  int rc = 0;
  if (!srv) {
    demo::eprintln("error: cannot serve on ", cfg.host, ":", cfg.port, ": ",
                   shardwire::describe(srv.error()));
    rc = 1;
  } else {
    for (auto& ep : srv->sockets)
      demo::eprintln("Serving on ", shardwire::to_string(ep), " with ",
                     rt.shard_count(), " shard(s), ", cfg.replica_addrs.size(),
                     " replica(s), writer id ", cfg.writer_id);
    shardwire::runtime::notify_ready("serving");
    shardwire::runtime::wait_for_stop_signal();
    demo::eprintln("Shutting down");
  }
  rt.shutdown();
  return rc;
}

} // namespace

const char* process_usage() {
  return "       kv_cluster replica --port P [--host=ADDR] [--data=FILE]\n"
         "       kv_cluster qfront --port P --replicas HOST:PORT,... "
         "[--writer-id=N] [--timeout-ms=N] [--bug=stale-read]\n";
}

int process_main(const std::string& mode, int argc, char** argv) {
  process_config cfg;
  if (auto rc = shardwire::parse_args(cfg, argc, argv,
                                      [&] { return cfg.validate(mode); }))
    return *rc;
  return mode == "replica" ? run_replica(cfg) : run_qfront(cfg);
}

} // namespace kv_quorum
