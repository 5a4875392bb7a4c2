#include "runtime/config.hpp"

#include "runtime/host_port.hpp"
#include "runtime/log.hpp"

#include <caf/config_option_set.hpp>
#include <caf/config_value.hpp>
#include <caf/pec.hpp>
#include <caf/settings.hpp>
#include <caf/timespan.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sys/resource.h>
#include <thread>

namespace shardwire {

namespace {

// Each shard holds its io_context's epoll and eventfd, its poller's epoll
// and a timer descriptor. Counted generously: the bound only keeps a typo
// from taking the whole descriptor table.
constexpr size_t fds_per_shard = 4;
constexpr size_t shards_per_hardware_thread = 16;

size_t open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 1 << 20;
  return static_cast<size_t>(rl.rlim_cur);
}

size_t hardware_threads() {
  auto n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

// "--name=value" -> "name"; "-x" -> "x"; anything else as it is.
std::string option_name(std::string_view arg) {
  if (arg.substr(0, 2) == "--") arg.remove_prefix(2);
  else if (arg.substr(0, 1) == "-") arg.remove_prefix(1);
  return std::string{arg.substr(0, arg.find('='))};
}

std::string option_value(std::string_view arg) {
  auto eq = arg.find('=');
  return eq == std::string_view::npos ? std::string{}
                                      : std::string{arg.substr(eq + 1)};
}

// What went wrong, in words, for the parser errors CAF's command-line
// parser reports (caf::pec).
std::string describe_parser_error(caf::pec code, const std::string& value) {
  auto quoted = "'" + value + "'";
  switch (code) {
    case caf::pec::not_an_option:
      return "unknown option";
    case caf::pec::missing_argument:
      return "needs a value (--name=value)";
    case caf::pec::integer_overflow:
      return quoted + " is too large for this option";
    case caf::pec::integer_underflow:
      return quoted + " is too small for this option";
    case caf::pec::type_mismatch:
      return quoted + " has the wrong type for this option";
    case caf::pec::timespan_overflow:
      return quoted + " is too long a time span";
    case caf::pec::fractional_timespan:
      return quoted + " must be a whole number of time units";
    default:
      return quoted + " is not a valid value for this option";
  }
}

// CAF reports a command-line error as pec + {"argument": "--name=value"}.
void print_parser_error(const caf::error& err) {
  std::string arg;
  auto& ctx = err.context();
  if (ctx.match_elements<caf::settings>()) {
    if (auto s = caf::get_if<std::string>(&ctx.get_as<caf::settings>(0),
                                          "argument"))
      arg = *s;
  }
  if (err.category() != caf::atom("parser") || arg.empty()) {
    std::cerr << "error: cannot parse the command line: "
              << caf::to_string(err) << " (see --help)\n";
    return;
  }
  auto code = static_cast<caf::pec>(err.code());
  check_option(false, option_name(arg),
               describe_parser_error(code, option_value(arg)));
}

// Reaches the option set of any CAF config: a pointer to a protected member
// formed in a derived class may be applied to any object of the base.
struct option_set_access : caf::actor_system_config {
  static constexpr auto member = &option_set_access::custom_options_;
};

const caf::config_option_set& options_of(const caf::actor_system_config& cfg) {
  return cfg.*(option_set_access::member);
}

// CAF 0.17 parses every integer as int64 and, for an unsigned option, drops
// a value that wrapped around (2^64-1 arrives as -1) without an error,
// leaving the default in place. Such a value is refused here.
bool check_unsigned_options(const caf::actor_system_config& cfg) {
  bool ok = true;
  for (auto& opt : options_of(cfg)) {
    if (opt.type_name().compare(0, 4, "uint") != 0) continue;
    const caf::config_value* val = nullptr;
    if (opt.category() == "global")
      val = caf::get_if(&cfg.content, opt.long_name());
    else
      val = caf::get_if(&cfg.content, opt.full_name());
    if (val == nullptr) continue;
    auto as_int = caf::get_if<caf::config_value::integer>(val);
    if (as_int == nullptr || *as_int >= 0) continue;
    auto sv = opt.category() == "global" ? opt.long_name() : opt.full_name();
    std::string name{sv.begin(), sv.end()};
    auto type = opt.type_name();
    ok = check_option(false, name,
                      "the value is negative or too large for an unsigned "
                      "option (" +
                          std::string{type.begin(), type.end()} + ")");
  }
  return ok;
}

// CAF accepts a short option with no value as the last argument ("-s") and
// ignores it; refused here like "--shards=" is.
bool check_dangling_short_option(const caf::actor_system_config& cfg,
                                  int argc, char** argv) {
  if (argc < 2) return true;
  std::string_view last = argv[argc - 1];
  if (last.size() != 2 || last[0] != '-' || last[1] == '-' || last[1] == 'h'
      || last[1] == '?')
    return true;
  std::string name{last.substr(1)};
  if (auto* opt = options_of(cfg).cli_short_name_lookup(last[1])) {
    if (opt->type_name() == "boolean") return true; // a flag: "-q"
    auto sv = opt->long_name();
    name.assign(sv.begin(), sv.end());
  }
  return check_option(false, name,
                      "needs a value (" + std::string{last} + " value)");
}

// --help, -h, -? and --long-help: CAF's help text, which says it goes to
// stderr, and the README agree on stderr, so it is sent there.
bool asks_for_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h" || a == "-?" || a == "--long-help")
      return true;
  }
  return false;
}

bool check_range(size_t value, size_t lo, size_t hi, std::string_view name,
                 std::string_view what) {
  return check_option(value >= lo && value <= hi, name,
                      std::to_string(value) + " is out of range; accepted " +
                          std::to_string(lo) + " to " + std::to_string(hi) +
                          std::string{what});
}

} // namespace

runtime_config::runtime_config() {
  if (const char* env = std::getenv("SHARDWIRE_FAST_PATH"))
    fast_path = std::string_view{env} != "0";
  opt_group{custom_options_, "global"}
      .add(shards, "shards,s", "number of shards (0 = one per hardware thread)")
      .add(log_level, "log-level", "quiet, error, warning, info or debug")
      .add(metrics, "metrics",
           "HOST:PORT to serve Prometheus metrics on at /metrics (off when "
           "not given; port 0 picks one)");
  opt_group{custom_options_, "shardwire"}
      .add(max_throughput, "max-throughput",
           "messages an actor handles per turn before yielding its shard")
      .add(read_chunk_size, "read-chunk-size", "bytes per socket read")
      .add(read_high_water, "read-high-water",
           "pause reading above this many unprocessed bytes at the protocol")
      .add(read_low_water, "read-low-water",
           "resume reading at this many unprocessed bytes")
      .add(write_buffer_cap, "write-buffer-cap",
           "abort a connection whose unsent bytes pass this (0 = no cap)")
      .add(fast_path, "fast-path",
           "deliver messages between idle co-located actors synchronously")
      .add(shutdown_grace_ms, "shutdown-grace-ms",
           "ms to wait for protocols to exit at shutdown before killing them")
      .add(metrics_collect_option, "metrics-collect",
           "true or false: collect per-shard metrics (false skips them, to "
           "measure their cost)")
      .add(stall_ms, "stall-ms",
           "log a shard handler running longer than this many ms, with a "
           "backtrace (0 = off)");
  // shardwire runs its own I/O threads; keep CAF's worker pool small so the
  // two pools do not oversubscribe the machine.
  set("scheduler.max-threads",
      std::max<size_t>(2, std::thread::hardware_concurrency() / 2));
  // An idle CAF worker wakes up every relaxed-sleep-duration (CAF: 10 ms)
  // to try to steal work: ~100 timed waits per second per worker in a
  // process with nothing to do, each preempting the shard thread on its
  // core (measured: ~1.5 % of a busy 1-shard server's CPU). New work wakes
  // a sleeping worker at once whatever the value; only stealing from a
  // busy worker's backlog waits for the timeout.
  set("work-stealing.relaxed-sleep-duration",
      caf::timespan{std::chrono::milliseconds{100}});
  // Debian's CAF prints a startup banner at this level otherwise.
  set("logger.console", caf::atom("none"));
}

size_t runtime_config::effective_shards() const {
  if (shards > 0) return shards;
  return std::min(hardware_threads(), max_shards());
}

size_t max_shards() {
  auto by_machine = shards_per_hardware_thread * hardware_threads();
  auto by_fds = open_file_limit() / (16 * fds_per_shard);
  return std::max<size_t>(1, std::min(by_machine, by_fds));
}

bool check_option(bool ok, std::string_view name, std::string_view message) {
  if (!ok)
    std::cerr << "error: --" << name << ": " << message << " (see --help)\n";
  return ok;
}

bool refuse_metrics_option(const runtime_config& cfg) {
  return check_option(cfg.metrics.empty(), "metrics",
                      "not served by this program: it runs no shardwire "
                      "runtime of its own");
}

bool validate_runtime_options(const runtime_config& cfg) {
  bool ok = true;
  if (cfg.shards != 0)
    ok &= check_range(cfg.shards, 1, max_shards(), "shards",
                      " (0 = one per hardware thread; the bound is 16 per "
                      "hardware thread and 1/64 of the open-file limit)");
  ok &= check_option(log::parse_level(cfg.log_level).has_value(), "log-level",
                     "'" + cfg.log_level +
                         "' is not a level; accepted: quiet, error, warning, "
                         "info, debug");
  constexpr size_t max_bytes = size_t{1} << 40; // 1 TiB: beyond any real use
  ok &= check_range(cfg.max_throughput, 1, 1'000'000,
                    "shardwire.max-throughput", "");
  ok &= check_range(cfg.read_chunk_size, 64, 16 * 1024 * 1024,
                    "shardwire.read-chunk-size", " bytes");
  ok &= check_range(cfg.read_high_water, 1, max_bytes,
                    "shardwire.read-high-water", " bytes");
  ok &= check_option(cfg.read_low_water <= cfg.read_high_water,
                     "shardwire.read-low-water",
                     std::to_string(cfg.read_low_water) +
                         " is above --shardwire.read-high-water (" +
                         std::to_string(cfg.read_high_water) +
                         "); the low mark must not exceed the high mark");
  // Below asyncio's default high-water mark the cap would abort
  // connections before their protocols were ever told to pause.
  constexpr size_t min_cap = 64 * 1024;
  ok &= check_option(cfg.write_buffer_cap == 0 ||
                         (cfg.write_buffer_cap >= min_cap &&
                          cfg.write_buffer_cap <= max_bytes),
                     "shardwire.write-buffer-cap",
                     std::to_string(cfg.write_buffer_cap) +
                         " is out of range; accepted 0 (no cap) or " +
                         std::to_string(min_cap) + " to " +
                         std::to_string(max_bytes) + " bytes");
  ok &= check_range(cfg.shutdown_grace_ms, 0, 3'600'000,
                    "shardwire.shutdown-grace-ms", " ms");
  ok &= check_range(cfg.stall_ms, 0, 600'000, "shardwire.stall-ms",
                    " ms (0 = off)");
  if (!cfg.metrics.empty()) {
    auto at = parse_host_port(cfg.metrics);
    ok &= check_option(at && !at->host.empty(), "metrics",
                       "'" + cfg.metrics +
                           "' is not HOST:PORT (port 0-65535, an IPv6 host "
                           "in brackets)");
  }
  return ok;
}

std::optional<int> parse_options(caf::actor_system_config& cfg, int argc,
                                 char** argv,
                                 const std::function<bool()>& validate) {
  caf::error err;
  if (asks_for_help(argc, argv)) {
    // CAF writes its help text to std::cout.
    auto* saved = std::cout.rdbuf(std::cerr.rdbuf());
    err = cfg.parse(argc, argv);
    std::cout.rdbuf(saved);
  } else {
    err = cfg.parse(argc, argv);
  }
  if (err) {
    print_parser_error(err);
    return 1;
  }
  if (cfg.cli_helptext_printed) return 0;
  // CAF keeps what it did not take as an option (a positional argument, or
  // anything after "--") in `remainder`; no shardwire program takes any, so
  // dropping them silently would run with defaults the user did not mean.
  if (!cfg.remainder.empty()) {
    for (auto& arg : cfg.remainder)
      std::cerr << "error: unexpected argument '" << arg
                << "': options take the form --name=value (see --help)\n";
    return 1;
  }
  bool ok = check_dangling_short_option(cfg, argc, argv);
  ok &= check_unsigned_options(cfg);
  if (!ok) return 1;
  if (validate && !validate()) return 1;
  return std::nullopt;
}

std::optional<int> parse_args(runtime_config& cfg, int argc, char** argv,
                              const std::function<bool()>& validate) {
  return parse_options(cfg, argc, argv, [&] {
    bool ok = true;
    if (auto& v = cfg.metrics_collect_option; !v.empty()) {
      if (v == "true" || v == "1" || v == "on")
        cfg.metrics_collect = true;
      else if (v == "false" || v == "0" || v == "off")
        cfg.metrics_collect = false;
      else
        ok = check_option(false, "shardwire.metrics-collect",
                          "'" + v +
                              "' is not a boolean; accepted: true, "
                              "false (also 1, 0, on, off)");
    }
    ok &= validate_runtime_options(cfg);
    // Program checks run even after a runtime error, so one run reports
    // every problem.
    if (validate) ok &= validate();
    return ok;
  });
}

} // namespace shardwire
