// chaos_proxy: a fault-injecting TCP proxy for out-of-process tests of real
// programs (tools/fault_proxy.hpp; docs/chaos-proxy.md).
//
// Two ways to run it, alone or together:
// - Toxiproxy's HTTP API on --api (default 127.0.0.1:8474; --api=off
//   disables it): named proxies and toxics created by any Toxiproxy client
//   (tools/toxiproxy_api.hpp); --config=FILE creates proxies at start from
//   the JSON that POST /populate takes. With no --upstream this is all it
//   does, like toxiproxy-server.
// - One proxy from the command line: listens on --listen, relays every
//   connection to --upstream, and applies per-direction faults: `up` is
//   client -> upstream, `down` upstream -> client. Faults can be changed
//   while it runs through a line-based control channel (--control=HOST:PORT,
//   e.g. with `nc`) and/or stdin (--stdin).
//
//   chaos_proxy [--api=127.0.0.1:8474|off] [--config=FILE]
//               [--listen=127.0.0.1:0 --upstream=127.0.0.1:8888]
//               [--control=127.0.0.1:0] [--stdin]
//               [--up.latency-ms=N] [--down.slice-max=N] ... [--seed=N]
//
// Prints "listening on HOST:PORT" (the command-line proxy), "control on
// HOST:PORT" and "api on HOST:PORT" on stdout once bound, so a test that
// asked for port 0 learns the port. Runs until Ctrl-C / SIGTERM or the
// control command `quit`.
#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"
#include "runtime/host_port.hpp"
#include "runtime/runtime.hpp"
#include "tools/fault_proxy.hpp"
#include "tools/http_server.hpp"
#include "tools/toxiproxy_api.hpp"
#include "transports/tcp.hpp"

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <poll.h>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

using namespace shardwire;

namespace {

// The command-line form of one fault_spec; -1 turns an optional fault off.
// Values go through set_fault, so the command line and the control channel
// accept and reject exactly the same things.
struct direction_options {
  size_t latency_ms = 0;
  size_t jitter_ms = 0;
  size_t bandwidth = 0;
  size_t slice_min = 0;
  size_t slice_max = 0;
  size_t slice_delay_us = 0;
  int64_t cut_after = -1;
  int64_t reset_after = -1;
  int64_t reset_after_ms = -1;
  bool black_hole = false;
  int64_t cut_after_ms = -1;
  size_t close_delay_ms = 0;

  void add_to(caf::config_option_set& opts, const char* category) {
    caf::config_option_adder{opts, category}
        .add(latency_ms, "latency-ms", "delay added to every byte (ms)")
        .add(jitter_ms, "jitter-ms", "uniform +/- variation of the delay (ms)")
        .add(bandwidth, "bandwidth", "bytes per second (0 = unlimited)")
        .add(slice_min, "slice-min", "smallest slice in bytes")
        .add(slice_max, "slice-max", "largest slice in bytes (0 = no slicing)")
        .add(slice_delay_us, "slice-delay-us", "pause between slices (us)")
        .add(cut_after, "cut-after",
             "close the connection after N bytes (-1 = off)")
        .add(reset_after, "reset-after",
             "reset the connection after N bytes (-1 = off)")
        .add(reset_after_ms, "reset-after-ms",
             "reset the connection T ms after it started (-1 = off)")
        .add(black_hole, "black-hole",
             "swallow data and EOF, keep the connection open")
        .add(cut_after_ms, "cut-after-ms",
             "close the connection T ms after it started (-1 = off)")
        .add(close_delay_ms, "close-delay-ms",
             "hold this direction's EOF back this long (ms)");
  }

  /// Sets every field of `spec`; prints `error: --CATEGORY.KEY: ...` for
  /// each value set_fault refuses and returns false if there was one.
  bool apply(fault_spec& spec, std::string_view category) const {
    std::pair<const char*, std::string> fields[] = {
        {"latency-ms", std::to_string(latency_ms)},
        {"jitter-ms", std::to_string(jitter_ms)},
        {"bandwidth", std::to_string(bandwidth)},
        {"slice-max", std::to_string(slice_max)},
        {"slice-min", std::to_string(slice_min)},
        {"slice-delay-us", std::to_string(slice_delay_us)},
        {"cut-after", std::to_string(cut_after)},
        {"reset-after", std::to_string(reset_after)},
        {"reset-after-ms", std::to_string(reset_after_ms)},
        {"black-hole", black_hole ? "1" : "0"},
        {"cut-after-ms", std::to_string(cut_after_ms)},
        {"close-delay-ms", std::to_string(close_delay_ms)}};
    bool ok = true;
    for (auto& [key, value] : fields)
      if (auto err = set_fault(spec, key, value))
        ok &= check_option(false, std::string{category} + "." + key,
                           describe(err));
    return ok;
  }
};

// Bound of --connect-timeout-ms: a day, far below where the milliseconds
// would overflow.
constexpr size_t max_timeout_ms = 24ull * 3600 * 1000;

struct proxy_config : config {
  std::string listen = "127.0.0.1:0";
  std::string upstream;
  std::string control;
  std::string api = "127.0.0.1:8474";
  std::string config_file;
  bool use_stdin = false;
  uint64_t seed = 0;
  size_t connect_timeout_ms = 5000;
  direction_options up;
  direction_options down;

  proxy_config() {
    opt_group{custom_options_, "global"}
        .add(listen, "listen,l",
             "HOST:PORT to accept clients on (port 0 = any)")
        .add(upstream, "upstream,u",
             "HOST:PORT every connection is relayed to (empty = no "
             "command-line proxy, only the API)")
        .add(api, "api",
             "HOST:PORT of the Toxiproxy HTTP API (port 0 = any; off = none)")
        .add(config_file, "config",
             "JSON file of proxies to create at start (POST /populate's body)")
        .add(control, "control,c",
             "HOST:PORT of the line-based control channel (empty = none)")
        .add(use_stdin, "stdin", "also read control commands from stdin")
        .add(seed, "seed", "seed of jitter and slice sizes (per connection)")
        .add(connect_timeout_ms, "connect-timeout-ms",
             "bound on connecting upstream");
    up.add_to(custom_options_, "up");
    down.add_to(custom_options_, "down");
  }

  /// CAF's --help lists only the global category; the fault flags live in
  /// `up` and `down`, so --help prints every category.
  /// Only the sections this program's users need (CAF's own categories
  /// are still accepted; --long-help lists them).
  std::string full_help() const {
    auto all = custom_options_.help_text(false);
    std::string out;
    size_t pos = 0;
    while (pos < all.size()) {
      auto end = all.find("\n\n", pos);
      if (end == std::string::npos) end = all.size();
      auto block = all.substr(pos, end - pos);
      for (const char* keep : {"global options:", "up options:",
                               "down options:", "shardwire options:"})
        if (block.rfind(keep, 0) == 0) out += block + "\n\n";
      pos = end + 2;
    }
    return out;
  }
};

/// A HOST:PORT option value with a host (runtime/host_port.hpp).
std::optional<host_port> split_host_port(const std::string& s) {
  auto hp = parse_host_port(s);
  if (!hp || hp->host.empty()) return std::nullopt;
  return hp;
}

void say(const std::string& text) {
  // The same lock as demo::eprintln: a control reply and a status line on
  // stderr do not interleave on a terminal.
  std::lock_guard<std::mutex> guard{demo::print_mutex()};
  std::cout << text << std::flush;
}

/// Runs a control line: the library's language plus `quit`.
std::string run_command(fault_proxy& proxy, std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.remove_suffix(1);
  if (line == "quit") {
    // Not runtime::request_stop(): in this snapshot it initialises the stop
    // semaphore a second time (its own function-local setup), which loses
    // the wake-up of a thread already waiting in wait_for_stop_signal. The
    // signal handler posts to the semaphore the waiter uses.
    std::raise(SIGTERM);
    return "OK\n";
  }
  return proxy.execute(line);
}

/// One control connection: reads lines, answers each one.
class control_protocol : public protocol {
public:
  explicit control_protocol(fault_proxy* proxy) : proxy_(proxy) {}

  void data_received(const buffer& bytes) override {
    pending_ += bytes.view();
    size_t pos;
    while ((pos = pending_.find('\n')) != std::string::npos) {
      auto line = pending_.substr(0, pos);
      pending_.erase(0, pos + 1);
      transport().write(run_command(*proxy_, line));
    }
    // A control line is short; a peer that sends megabytes without a
    // newline is not a control client.
    if (pending_.size() > 64 * 1024) {
      transport().write(std::string_view{"ERR line too long\n"});
      transport().close();
    }
  }

private:
  fault_proxy* proxy_;
  std::string pending_;
};

} // namespace

int main(int argc, char** argv) {
  proxy_config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg{argv[i]};
    if (arg == "--help" || arg == "-h" || arg == "-?") {
      // On stderr, as every shardwire program's --help (CAF's own text says
      // so).
      std::cerr
          << "usage: chaos_proxy [--api=HOST:PORT|off] [--config=FILE]\n"
             "                   [--upstream=HOST:PORT [--listen=HOST:PORT]]"
             " [options]\n\n"
          << cfg.full_help()
          << "\ncontrol commands (--control / --stdin), one per line:\n"
             "  set <up|down|both>.<key> <value> | get <up|down>.<key> |"
             " faults | status\n"
             "  clear | reset-all | sever | help | quit\n";
      return 0;
    }
  }
  // Every option is checked before anything is bound or printed.
  fault_proxy_options opts;
  std::optional<host_port> control_at;
  std::optional<host_port> api_at;
  std::string config_json;
  auto validate = [&] {
    // Checks one HOST:PORT flag, naming it and its value.
    auto address = [](std::string_view name, const std::string& value) {
      auto hp = split_host_port(value);
      check_option(hp.has_value(), name,
                   value.empty() ? std::string{"required: HOST:PORT"}
                                 : "expected HOST:PORT (port 0-65535), got '" +
                                       value + "'");
      return hp;
    };
    auto listen = address("listen", cfg.listen);
    bool ok = listen.has_value();
    bool api_on = cfg.api != "off";
    if (api_on) {
      api_at = address("api", cfg.api);
      ok &= api_at.has_value();
    }
    std::optional<host_port> upstream;
    if (!cfg.upstream.empty() || !api_on) {
      // Without the API the command-line proxy is all there is.
      upstream = address("upstream", cfg.upstream);
      ok &= upstream.has_value();
    }
    if (!cfg.control.empty()) {
      control_at = address("control", cfg.control);
      ok &= control_at.has_value();
      ok &= check_option(cfg.upstream.empty() == false, "control",
                         "needs the command-line proxy (--upstream)");
    }
    ok &= check_option(!cfg.use_stdin || !cfg.upstream.empty(), "stdin",
                       "needs the command-line proxy (--upstream)");
    if (!cfg.config_file.empty()) {
      std::ifstream in{cfg.config_file, std::ios::binary};
      std::ostringstream text;
      if (in) text << in.rdbuf();
      if (!in || in.bad()) {
        ok &= check_option(false, "config",
                           "cannot read '" + cfg.config_file + "'");
      } else {
        config_json = text.str();
        std::vector<toxiproxy::proxy_config> parsed;
        if (auto err = toxiproxy::parse_populate(config_json, parsed))
          ok &= check_option(false, "config", err->message);
        ok &= check_option(api_on, "config", "needs the API (--api)");
      }
    }
    if (listen) {
      opts.listen_host = listen->host;
      opts.listen_port = listen->port;
    }
    if (upstream) {
      opts.upstream_host = upstream->host;
      opts.upstream_port = upstream->port;
    }
    ok &= check_option(
        cfg.connect_timeout_ms >= 1 && cfg.connect_timeout_ms <= max_timeout_ms,
        "connect-timeout-ms", "must be 1-" + std::to_string(max_timeout_ms));
    ok &= cfg.up.apply(opts.faults.up, "up");
    ok &= cfg.down.apply(opts.faults.down, "down");
    return ok;
  };
  if (auto rc = parse_args(cfg, argc, argv, validate)) return *rc;
  opts.seed = cfg.seed;
  opts.connect_timeout = std::chrono::milliseconds(cfg.connect_timeout_ms);
  runtime rt{cfg};
  std::optional<fault_proxy> proxy;
  if (!cfg.upstream.empty()) {
    auto p = fault_proxy::start(rt, opts);
    if (!p) {
      demo::eprintln("error: cannot start the proxy: ", describe(p.error()));
      rt.shutdown();
      return 1;
    }
    proxy = std::move(*p);
  }
  // The API's proxies live until `api` is stopped, before the runtime.
  std::optional<toxiproxy_api> api;
  std::optional<http_server> api_server;
  auto stop_api = [&] {
    if (api_server) api_server->stop();
    if (api) api->stop();
  };
  if (api_at) {
    toxiproxy_api_options ao;
    ao.default_seed = cfg.seed;
    ao.connect_timeout = opts.connect_timeout;
    api.emplace(rt, ao);
    if (!config_json.empty()) {
      if (auto err = api->populate(config_json)) {
        demo::eprintln("error: --config: ", cfg.config_file, ": ",
                       err->message);
        stop_api();
        if (proxy) proxy->stop();
        rt.shutdown();
        return 1;
      }
    }
    http_server_options ho;
    ho.host = api_at->host;
    ho.port = api_at->port;
    auto srv = http_server::start(rt, ho, api->async_handler<http_responder>());
    if (!srv) {
      demo::eprintln("error: --api: cannot listen on ", cfg.api, ": ",
                     describe(srv.error()));
      stop_api();
      if (proxy) proxy->stop();
      rt.shutdown();
      return 1;
    }
    api_server = std::move(*srv);
  }
  // --metrics: the API's /metrics (the proxies' series and shardwire's),
  // rendered on the API's worker thread, which owns the proxies; without
  // the API, shardwire's series alone.
  http_handler metrics_handler;
  if (api) metrics_handler = api->async_handler<http_responder>();
  auto metrics = demo::serve_metrics(rt, cfg, std::move(metrics_handler));
  if (!metrics) {
    stop_api();
    if (proxy) proxy->stop();
    rt.shutdown();
    return 1;
  }
  // The control channel is bound before either address is printed, so a
  // failure there is not preceded by a "listening on" line.
  std::optional<server> control;
  if (!cfg.control.empty()) {
    server_options so;
    so.hosts = {control_at->host};
    so.port = control_at->port;
    so.reads_follow_writes = true; // request/response
    auto srv = create_server(rt, make_protocol<control_protocol>(&*proxy), so);
    if (!srv) {
      demo::eprintln("error: cannot open the control channel on ", cfg.control,
                     ": ", describe(srv.error()));
      stop_api();
      proxy->stop();
      rt.shutdown();
      return 1;
    }
    control = *srv;
  }
  if (proxy) {
    say("listening on " + to_string(proxy->address()) + "\n");
    if (control)
      say("control on " + to_string(control->sockets.front()) + "\n");
    demo::eprintln("relaying to ", cfg.upstream,
                   "; up: ", to_string(opts.faults.up),
                   "; down: ", to_string(opts.faults.down));
  }
  if (api_server) say("api on " + to_string(api_server->address()) + "\n");
  // Type=notify under systemd: ready now (a no-op elsewhere).
  runtime::notify_ready(proxy ? "relaying " + to_string(proxy->address()) +
                                    " to " + cfg.upstream
                              : "api on " + to_string(api_server->address()));
  // stdin commands: a thread that polls with a timeout, so it notices the
  // stop and never outlives the proxy it talks to.
  std::atomic<bool> stopping{false};
  std::thread input;
  if (cfg.use_stdin) {
    input = std::thread{[&] {
      std::string pending;
      char buf[4096];
      while (!stopping.load()) {
        pollfd p{STDIN_FILENO, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        auto n = ::read(STDIN_FILENO, buf, sizeof(buf));
        if (n <= 0) return; // EOF: no more commands, keep proxying
        pending.append(buf, static_cast<size_t>(n));
        size_t pos;
        while ((pos = pending.find('\n')) != std::string::npos) {
          auto line = pending.substr(0, pos);
          pending.erase(0, pos + 1);
          say(run_command(*proxy, line));
        }
      }
    }};
  }
  runtime::wait_for_stop_signal();
  stopping = true;
  if (input.joinable()) input.join();
  stop_api();
  if (proxy) {
    demo::eprintln("stopping; ", to_string(proxy->stats()));
    proxy->stop();
  }
  rt.shutdown();
  return 0;
}
