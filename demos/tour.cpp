// A short tour of shardwire in one process on two shards.
//
// Three echo exchanges, each between a server side written in the callback
// style (asyncio.Protocol's connection_made / data_received / ...) and a
// client side written in the actor style (a typed actor handling the
// `connected`, `data`, `eof`, `lost` messages):
//   1. TCP:        create_server + create_connection on 127.0.0.1
//   2. Unix:       create_unix_server + create_unix_connection in a temp dir
//   3. socketpair: both ends adopted with connect_accepted_socket, one on
//                  each shard
// Every line says which side printed it and which shard it runs on. Ends
// with a summary and exits 0 when all three exchanges echoed intact.
//
//   tour [--message=TEXT] [--shards=N] [--timeout-ms=MS] [--help]
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/socket.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;

namespace {

// --timeout-ms bounds each exchange: 0 would fail every one at once, and a
// day is far below where the milliseconds overflow.
constexpr size_t max_timeout_ms = 24ull * 3600 * 1000;

struct tour_config : config {
  std::string message = "Hello from the shardwire tour!";
  size_t timeout_ms = 5000;

  tour_config() {
    opt_group{custom_options_, "global"}
        .add(message, "message,m",
             "text each client sends and expects back (not empty)")
        .add(timeout_ms, "timeout-ms",
             "bound on each exchange in milliseconds (1-86400000)");
    shards = 2;
  }

  /// Checks the tour's own options (parse_args' validator).
  bool validate() const {
    bool ok = check_option(!message.empty(), "message",
                           "must not be empty (an echo of nothing proves "
                           "nothing)");
    ok &= check_option(timeout_ms >= 1 && timeout_ms <= max_timeout_ms,
                       "timeout-ms",
                       "must be 1-" + std::to_string(max_timeout_ms) +
                           " (0 would time out every exchange)");
    return ok;
  }
};

// -- results -----------------------------------------------------------------

struct side_result {
  uint32_t shard = 0;
  std::string received; // client: the echo; server: what it got
  std::string ending;   // "clean" or the error
};

/// A promise that may be fulfilled once; later attempts are ignored.
class once_result {
public:
  void set(side_result r) {
    if (!done_.exchange(true)) promise_.set_value(std::move(r));
  }
  std::future<side_result> future() { return promise_.get_future(); }

private:
  std::atomic<bool> done_{false};
  std::promise<side_result> promise_;
};

using result_ptr = std::shared_ptr<once_result>;

std::string tag(const std::string& label, uint32_t shard) {
  auto out = "[" + label + " | shard " + std::to_string(shard) + "]";
  out.resize(std::max<size_t>(out.size(), 28), ' ');
  return out;
}

// -- the server side: callback style ------------------------------------------

/// Echoes everything back, like the asyncio.Protocol subclasses of the
/// documentation, and closes when the client half-closes or goes.
class echo_protocol : public protocol {
public:
  echo_protocol(std::string label, result_ptr done)
      : label_(std::move(label)), done_(std::move(done)) {}

  void connection_made(transport_ref& t) override {
    shard_ = t.info().shard;
    demo::println(tag(label_, shard_), " connection_made: peer ",
                  python_repr(t.info().peername), " (", t.info().kind, ")");
  }

  void data_received(const buffer& bytes) override {
    got_ += bytes.str();
    demo::println(tag(label_, shard_),
                  " data_received: ", demo::py_repr(bytes.view()),
                  " -> writing it back");
    transport().write(bytes); // shares the bytes, no copy
  }

  bool eof_received() override {
    demo::println(tag(label_, shard_), " eof_received -> close");
    return false;
  }

  void connection_lost(const caf::error& reason) override {
    auto ending = reason ? describe(reason) : std::string{"clean"};
    demo::println(tag(label_, shard_), " connection_lost: ", ending);
    done_->set(side_result{shard_, got_, ending});
  }

private:
  std::string label_;
  result_ptr done_;
  uint32_t shard_ = 0;
  std::string got_;
};

// -- the client side: actor style
// -------------------------------------------------

/// Sends `message` when connected, collects the echo, and closes once the
/// whole message came back. A typed actor pinned to its connection's shard.
class greeter : public pinned<protocol_actor::base> {
public:
  greeter(caf::actor_config& cfg, std::string label, std::string message,
          result_ptr done)
      : pinned(cfg), label_(std::move(label)), message_(std::move(message)),
        done_(std::move(done)) {}

  behavior_type make_behavior() override {
    return {
        [this](connected& msg) {
          transport_ = msg.transport;
          shard_ = msg.info.shard;
          demo::println(tag(label_, shard_), " connected to ",
                        python_repr(msg.info.peername), "; sending ",
                        demo::py_repr(message_));
          send(transport_, shardwire::write{buffer::copy_of(message_)});
        },
        [this](data& msg) {
          received_ += msg.bytes.str();
          demo::println(tag(label_, shard_),
                        " data: ", demo::py_repr(msg.bytes.view()));
          if (received_.size() >= message_.size()) {
            demo::println(tag(label_, shard_), " echo complete -> close");
            send(transport_, shardwire::close{});
          }
        },
        [this](eof) {
          demo::println(tag(label_, shard_), " eof");
          return false;
        },
        [](shardwire::pause) {},
        [](shardwire::resume) {},
        [this](lost& msg) {
          auto ending =
              msg.reason ? describe(msg.reason) : std::string{"clean"};
          demo::println(tag(label_, shard_), " lost: ", ending);
          done_->set(side_result{shard_, received_, ending});
          quit();
        },
    };
  }

private:
  std::string label_;
  std::string message_;
  result_ptr done_;
  transport_actor transport_;
  uint32_t shard_ = 0;
  std::string received_;
};

// -- the tour
// ---------------------------------------------------------------------

struct exchange {
  std::string name;
  bool ok = false;
  side_result client;
  side_result server;
  std::string error;
};

/// Waits for both sides' results (bounded) and judges the exchange.
exchange finish(std::string name, const std::string& message,
                std::future<side_result> client,
                std::future<side_result> server,
                std::chrono::milliseconds timeout) {
  exchange ex;
  ex.name = std::move(name);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto* f : {&client, &server}) {
    switch (runtime::wait_or_stop(*f, deadline)) {
      case runtime::wait_end::ready:
        continue;
      case runtime::wait_end::timeout:
        ex.error = "timed out after " + std::to_string(timeout.count()) +
                   " ms (--timeout-ms)";
        return ex;
      case runtime::wait_end::stop_requested:
        ex.error = "interrupted";
        return ex;
    }
  }
  ex.client = client.get();
  ex.server = server.get();
  ex.ok = ex.client.received == message && ex.server.received == message &&
          ex.client.ending == "clean" && ex.server.ending == "clean";
  if (!ex.ok)
    ex.error = "client got " + demo::py_repr(ex.client.received) + " (" +
               ex.client.ending + "), server got " +
               demo::py_repr(ex.server.received) + " (" + ex.server.ending +
               ")";
  return ex;
}

exchange tour_tcp(runtime& rt, const tour_config& cfg) {
  demo::println("\n== 1. TCP on 127.0.0.1 ==");
  auto server_done = std::make_shared<once_result>();
  auto client_done = std::make_shared<once_result>();
  auto sf = server_done->future();
  auto cf = client_done->future();
  server_options so; // 127.0.0.1, port 0
  so.reads_follow_writes = true; // an echo: memory bounded by the client
  auto srv = create_server(
      rt, make_protocol<echo_protocol>("tcp server", server_done), so);
  if (!srv) return exchange{"tcp", false, {}, {}, describe(srv.error())};
  demo::println("server listening on ", to_string(srv->sockets.at(0)),
                " (listener on shard 0, connections spread over ",
                rt.shard_count(), " shards)");
  connect_options co;
  co.port = srv->sockets.at(0).port;
  auto conn = create_connection(
      rt, co, spawn_protocol<greeter>("tcp client", cfg.message, client_done));
  if (!conn) {
    caf::anon_send(srv->actor, shardwire::close{});
    return exchange{"tcp", false, {}, {}, describe(conn.error())};
  }
  auto ex = finish("tcp", cfg.message, std::move(cf), std::move(sf),
                   std::chrono::milliseconds{cfg.timeout_ms});
  caf::anon_send(srv->actor, shardwire::close{});
  return ex;
}

exchange tour_unix(runtime& rt, const tour_config& cfg) {
  demo::println("\n== 2. Unix domain socket ==");
  auto tmpl = (std::filesystem::temp_directory_path() / "shardwire-tour-XXXXXX")
                  .string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    return exchange{"unix", false, {}, {}, "mkdtemp failed"};
  std::filesystem::path dir{tmpl};
  auto path = (dir / "echo.sock").string();
  auto server_done = std::make_shared<once_result>();
  auto client_done = std::make_shared<once_result>();
  auto sf = server_done->future();
  auto cf = client_done->future();
  unix_server_options uo;
  uo.path = path;
  uo.listener_shard = 1;
  uo.reads_follow_writes = true;
  auto srv = create_unix_server(
      rt, make_protocol<echo_protocol>("unix server", server_done), uo);
  exchange ex{"unix", false, {}, {}, {}};
  if (!srv) {
    ex.error = describe(srv.error());
  } else {
    demo::println("server listening on ", path, " (listener on shard 1)");
    auto conn = create_unix_connection(
        rt, path,
        spawn_protocol<greeter>("unix client", cfg.message, client_done));
    if (!conn)
      ex.error = describe(conn.error());
    else
      ex = finish("unix", cfg.message, std::move(cf), std::move(sf),
                  std::chrono::milliseconds{cfg.timeout_ms});
    // Closing the server removes its socket file.
    caf::scoped_actor self{rt.system()};
    self->monitor(srv->actor);
    self->send(srv->actor, shardwire::close{});
    self->receive([](caf::down_msg&) {},
                  caf::after(std::chrono::milliseconds{cfg.timeout_ms}) >>
                      [] {});
    demo::println("server closed; socket file ",
                  std::filesystem::exists(path) ? "still there" : "removed");
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return ex;
}

exchange tour_socketpair(runtime& rt, const tour_config& cfg) {
  demo::println("\n== 3. socketpair, one end per shard ==");
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return exchange{"socketpair", false, {}, {}, "socketpair failed"};
  auto server_done = std::make_shared<once_result>();
  auto client_done = std::make_shared<once_result>();
  auto sf = server_done->future();
  auto cf = client_done->future();
  size_t last = rt.shard_count() - 1;
  auto echo_end = connect_accepted_socket(
      rt, fds[0], make_protocol<echo_protocol>("pair echo end", server_done),
      size_t{0});
  if (!echo_end) {
    ::close(fds[1]);
    return exchange{"socketpair", false, {}, {}, describe(echo_end.error())};
  }
  auto client_end = connect_accepted_socket(
      rt, fds[1],
      spawn_protocol<greeter>("pair client end", cfg.message, client_done),
      last);
  if (!client_end) {
    caf::anon_send(echo_end->transport, shardwire::close{});
    return exchange{"socketpair", false, {}, {}, describe(client_end.error())};
  }
  return finish("socketpair", cfg.message, std::move(cf), std::move(sf),
                std::chrono::milliseconds{cfg.timeout_ms});
}

} // namespace

int main(int argc, char** argv) {
  tour_config cfg;
  if (auto rc = parse_args(cfg, argc, argv, [&] { return cfg.validate(); }))
    return *rc;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  demo::println("shardwire tour: ", rt.shard_count(),
                " shard(s); servers use callback-style protocols, clients "
                "actor-style ones");
  std::vector<exchange> results;
  for (auto* step : {&tour_tcp, &tour_unix, &tour_socketpair})
    if (!runtime::stop_requested()) results.push_back(step(rt, cfg));
  demo::println("\n== Summary ==");
  size_t ok = 0;
  for (auto& ex : results) {
    if (ex.ok) {
      ++ok;
      demo::println("  ", ex.name, ": client (actor style, shard ",
                    ex.client.shard, ") <-> server (callback style, shard ",
                    ex.server.shard, "): ", ex.client.received.size(),
                    " bytes echoed intact, both sides closed cleanly");
    } else {
      demo::println("  ", ex.name, ": FAILED: ", ex.error);
      // The verdict goes to stdout with the tour; the reason to stderr too,
      // where a script looks for errors.
      demo::eprintln("error: ", ex.name, " exchange failed: ", ex.error);
    }
  }
  demo::println(ok, "/", results.size(), " exchanges ok");
  rt.shutdown();
  if (runtime::stop_requested()) {
    demo::eprintln("error: interrupted");
    return 1;
  }
  return ok == results.size() ? 0 : 1;
}
