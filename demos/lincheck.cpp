// Checks a recorded history for linearizability (sim/linearizability.hpp).
//
// Reads a history file of JSON lines, as `sim::history::write_jsonl` writes
// it (one operation per line; sim/history.hpp, `read_jsonl`), checks it
// against a sequential model and prints the checker's report on stdout.
//
//   lincheck --history=FILE [--model=kv|register] [--time-limit=SECONDS]
//            [--max-steps=N]
//
// Exit status: 0 linearizable, 1 not linearizable (or a refused option:
// `error: --NAME: ...` on stderr, nothing checked), 2 the check hit a bound
// (--time-limit, --max-steps) or the file's content is refused (the error
// names the line and the field). An unreadable file is an option error
// (exit 1), like every other program's file options.
//
// Runs no shardwire runtime: the check is a pure function on this thread.
// docs/simulation.md ("Checking histories") and docs/distributed.md
// ("Checking a real cluster's history") show it at work.
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "sim/history.hpp"
#include "sim/linearizability.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

using namespace shardwire;

namespace {

// A week: a bound, not a limit anyone should reach.
constexpr double max_time_limit_s = 7 * 24 * 3600.0;

// Exit codes (the header comment).
constexpr int exit_linearizable = 0;
constexpr int exit_not_linearizable = 1;
constexpr int exit_undecided = 2;

struct lincheck_config : config {
  std::string history;
  std::string model = "kv";
  double time_limit = 10.0;
  uint64_t max_steps = sim::check_options{}.max_steps;

  lincheck_config() {
    opt_group{custom_options_, "global"}
        .add(history, "history",
             "file of JSON lines, one operation per line (required)")
        .add(model, "model",
             "sequential model: kv (get/put/delete/cas per key) or register "
             "(read/write/cas)")
        .add(time_limit, "time-limit",
             "wall-clock bound of the check in seconds (0 = none); a check "
             "that reaches it exits 2")
        .add(max_steps, "max-steps",
             "bound on model steps of the search (at least 1); a check that "
             "reaches it exits 2");
  }

  bool validate() const {
    bool ok = refuse_metrics_option(*this);
    ok &= check_option(!history.empty(), "history", "a file is required");
    ok &= check_option(model == "kv" || model == "register", "model",
                       "must be kv or register, got '" + model + "'");
    ok &= check_option(std::isfinite(time_limit) && time_limit >= 0 &&
                           time_limit <= max_time_limit_s,
                       "time-limit",
                       "must be 0-" + std::to_string(int(max_time_limit_s)) +
                           " seconds");
    ok &= check_option(max_steps >= 1, "max-steps", "must be at least 1");
    return ok;
  }
};

} // namespace

int main(int argc, char** argv) {
  lincheck_config cfg;
  if (auto rc = parse_args(cfg, argc, argv, [&] { return cfg.validate(); }))
    return *rc;
  std::ifstream in{cfg.history};
  if (!in) {
    check_option(false, "history",
                 "cannot open '" + cfg.history + "': " + std::strerror(errno));
    return 1;
  }
  auto loaded = sim::read_jsonl(in);
  if (!loaded) {
    demo::eprintln("error: ", cfg.history, ": ", loaded.error);
    return exit_undecided;
  }
  auto m = cfg.model == "kv" ? sim::kv_model() : sim::register_model();
  sim::check_options opts;
  opts.max_steps = cfg.max_steps;
  opts.time_limit = std::chrono::milliseconds{
      static_cast<int64_t>(std::llround(cfg.time_limit * 1000))};
  // A limit under a millisecond rounds to 0, which means none: keep it one.
  if (cfg.time_limit > 0 && opts.time_limit.count() == 0)
    opts.time_limit = std::chrono::milliseconds{1};
  auto result = sim::check(*loaded.value, m, opts);
  std::cout << cfg.history << ": " << loaded.value->size() << " operations\n"
            << result.report;
  if (!result.report.empty() && result.report.back() != '\n') std::cout << '\n';
  std::cout << std::flush;
  switch (result.outcome) {
  case sim::check_outcome::linearizable:
    return exit_linearizable;
  case sim::check_outcome::not_linearizable:
    return exit_not_linearizable;
  case sim::check_outcome::timed_out:
    break;
  }
  return exit_undecided;
}
