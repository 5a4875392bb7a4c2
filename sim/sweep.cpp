#include "sim/sweep.hpp"

#include "sim/scenario.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

namespace shardwire::sim {

namespace {

// Decimal digits only; on failure says why in `error`, naming `what`.
std::optional<uint64_t>
parse_number(std::string_view text, std::string_view what, std::string& error) {
  if (text.empty()) {
    error = std::string{what} + " is missing";
    return std::nullopt;
  }
  for (char ch : text)
    if (ch < '0' || ch > '9') {
      error = "'" + std::string{text} + "' is not a number (" +
              std::string{what} + "; decimal digits only)";
      return std::nullopt;
    }
  uint64_t value = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    error = "'" + std::string{text} + "' is too large (" + std::string{what} +
            "; at most 18446744073709551615)";
    return std::nullopt;
  }
  if (ec != std::errc{} || end != text.data() + text.size()) {
    error = "'" + std::string{text} + "' is not a number";
    return std::nullopt;
  }
  return value;
}

std::string too_many(uint64_t n) {
  return std::to_string(n) + " seeds are too many (at most " +
         std::to_string(seed_set::max_size) + ")";
}

// The first line where `a` and `b` differ, for the determinism message.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream in_a{a};
  std::istringstream in_b{b};
  size_t line = 0;
  for (;;) {
    ++line;
    std::string la;
    std::string lb;
    bool more_a = static_cast<bool>(std::getline(in_a, la));
    bool more_b = static_cast<bool>(std::getline(in_b, lb));
    if (!more_a && !more_b) break;
    if (more_a != more_b || la != lb) {
      return "nondeterministic: the two runs of this seed gave different "
             "traces; first difference at line " +
             std::to_string(line) +
             ":\n  first run:  " + (more_a ? la : "<end of trace>") +
             "\n  second run: " + (more_b ? lb : "<end of trace>");
    }
  }
  // Equal line by line but not byte for byte: a trailing newline.
  return "nondeterministic: the two runs of this seed gave different traces "
         "(they differ only in a final newline)";
}

seed_outcome run_guarded(const sweep_scenario& scenario, uint64_t seed) {
  try {
    return scenario(seed);
  } catch (const std::exception& e) {
    return {false, {}, std::string{"exception: "} + e.what()};
  } catch (...) {
    return {false, {}, "exception of unknown type"};
  }
}

// One seed: once, or twice and compared. Empty optional: passed.
std::optional<std::string> check_seed(const sweep_scenario& scenario,
                                      uint64_t seed, bool determinism) {
  auto first = run_guarded(scenario, seed);
  if (!first.ok)
    return first.message.empty() ? "failed (no message)" : first.message;
  if (!determinism) return std::nullopt;
  auto second = run_guarded(scenario, seed);
  if (!second.ok)
    return "nondeterministic: the first run passed, the second failed: " +
           (second.message.empty() ? std::string{"(no message)"}
                                   : second.message);
  if (first.trace != second.trace)
    return first_difference(first.trace, second.trace);
  return std::nullopt;
}

// SHARDWIRE_SIM_SEED when it holds a number (the rule of sim::scenario).
std::optional<uint64_t> env_seed() {
  const char* env = std::getenv("SHARDWIRE_SIM_SEED");
  if (env == nullptr || *env == '\0') return std::nullopt;
  std::string error;
  return parse_number(env, "SHARDWIRE_SIM_SEED", error);
}

} // namespace

// -- seed_set -----------------------------------------------------------------

seed_set seed_set::range(uint64_t first, uint64_t last) {
  if (first > last)
    throw std::invalid_argument("seed range " + std::to_string(first) + "-" +
                                std::to_string(last) +
                                " is empty: the first seed is above the last");
  if (last - first >= max_size)
    throw std::invalid_argument(
        "seed range " + std::to_string(first) + "-" + std::to_string(last) +
        " holds too many seeds (at most " + std::to_string(max_size) + ")");
  seed_set s;
  s.first_ = first;
  s.count_ = last - first + 1;
  return s;
}

seed_set seed_set::single(uint64_t seed) {
  return range(seed, seed);
}

seed_set seed_set::random(uint64_t count, uint64_t base) {
  if (count == 0)
    throw std::invalid_argument(
        "random:0 draws no seeds (N must be 1 or more)");
  if (count > max_size) throw std::invalid_argument(too_many(count));
  // mt19937_64's output is fixed by the standard, so a base gives the same
  // seeds with every standard library. Seeds stay below 2^32: short to
  // type, and valid for programs whose --seed option is a signed 64-bit
  // integer (CAF 0.17's).
  std::mt19937_64 gen{base};
  seed_set s;
  s.is_random_ = true;
  s.base_ = base;
  s.random_.reserve(static_cast<size_t>(count));
  while (s.random_.size() < count) {
    while (s.random_.size() < count)
      s.random_.push_back(gen() >> 32);
    std::sort(s.random_.begin(), s.random_.end());
    s.random_.erase(std::unique(s.random_.begin(), s.random_.end()),
                    s.random_.end());
  }
  return s;
}

std::optional<seed_set> seed_set::parse(std::string_view spec,
                                        std::string& error) {
  error.clear();
  auto fail = [&](std::string why) {
    error = std::move(why);
    return std::nullopt;
  };
  if (spec.empty())
    return fail("the seed set is empty; expected A-B, random:N[@BASE] or N");
  constexpr std::string_view random_prefix = "random:";
  try {
    if (spec.substr(0, random_prefix.size()) == random_prefix) {
      auto rest = spec.substr(random_prefix.size());
      auto at = rest.find('@');
      auto n =
          parse_number(rest.substr(0, at), "the count N of random:N", error);
      if (!n) return std::nullopt;
      uint64_t base = 0;
      if (at != std::string_view::npos) {
        auto b = parse_number(rest.substr(at + 1), "the base of random:N@BASE",
                              error);
        if (!b) return std::nullopt;
        base = *b;
      } else {
        std::random_device rd;
        base = (uint64_t{rd()} << 32) | rd();
      }
      return random(*n, base);
    }
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) {
      auto n = parse_number(spec, "a seed", error);
      if (!n) return std::nullopt;
      return single(*n);
    }
    auto a = parse_number(spec.substr(0, dash), "the first seed of A-B", error);
    if (!a) return std::nullopt;
    auto b = parse_number(spec.substr(dash + 1), "the last seed of A-B", error);
    if (!b) return std::nullopt;
    if (*a > *b)
      return fail("in '" + std::string{spec} +
                  "' the first seed is above the " + "last (A-B needs A <= B)");
    if (*b - *a >= max_size)
      return fail("'" + std::string{spec} + "' holds too many seeds (at most " +
                  std::to_string(max_size) + ")");
    return range(*a, *b);
  } catch (const std::invalid_argument& e) {
    return fail(e.what());
  }
}

size_t seed_set::size() const noexcept {
  return is_random_ ? random_.size() : static_cast<size_t>(count_);
}

uint64_t seed_set::operator[](size_t i) const noexcept {
  return is_random_ ? random_[i] : first_ + i;
}

std::string seed_set::text() const {
  if (is_random_)
    return "random:" + std::to_string(random_.size()) + "@" +
           std::to_string(base_);
  if (count_ == 0) return "(none)";
  if (count_ == 1) return std::to_string(first_);
  return std::to_string(first_) + "-" + std::to_string(first_ + count_ - 1);
}

// -- sweep --------------------------------------------------------------------

std::string shell_quote(std::string_view text) {
  auto safe = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') ||
           std::string_view{"_-./=:,+@%"}.find(ch) != std::string_view::npos;
  };
  if (!text.empty() && std::all_of(text.begin(), text.end(), safe))
    return std::string{text};
  std::string out = "'";
  for (char ch : text) {
    if (ch == '\'')
      out += "'\\''";
    else
      out += ch;
  }
  return out + "'";
}

std::string default_replay_command(uint64_t seed) {
  std::string out = "SHARDWIRE_SIM_SEED=" + std::to_string(seed);
  if (const char* fp = std::getenv("SHARDWIRE_FAST_PATH");
      fp != nullptr && std::string_view{fp} == "0")
    out += " SHARDWIRE_FAST_PATH=0";
  std::ifstream in{"/proc/self/cmdline", std::ios::binary};
  std::string cmdline{std::istreambuf_iterator<char>{in},
                      std::istreambuf_iterator<char>{}};
  if (cmdline.empty()) return out + " <this program>";
  size_t pos = 0;
  while (pos < cmdline.size()) {
    auto end = cmdline.find('\0', pos);
    if (end == std::string::npos) end = cmdline.size();
    out += ' ';
    out += shell_quote(std::string_view{cmdline}.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

sweep_result sweep(const sweep_options& opts, const sweep_scenario& scenario) {
  auto start = std::chrono::steady_clock::now();
  sweep_result res;
  res.determinism = opts.determinism;
  seed_set seeds = opts.seeds;
  if (opts.seed_from_env)
    if (auto s = env_seed()) {
      seeds = seed_set::single(*s);
      res.seed_from_env = true;
    }
  if (seeds.empty())
    throw std::invalid_argument("sweep: the seed set is empty");
  if (!scenario) throw std::invalid_argument("sweep: no scenario");
  res.seeds = seeds.text();
  const size_t n = seeds.size();
  res.seeds_total = n;

  unsigned jobs = opts.jobs;
  if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
  if (jobs > n) jobs = static_cast<unsigned>(n);
  res.jobs = jobs;

  const bool limited = opts.time_limit > std::chrono::steady_clock::duration{0};
  const auto deadline = start + opts.time_limit;

  // Seeds are handed out by index in ascending order. Everything below an
  // index handed out has been handed out before it, and a handed-out seed
  // is always run; after a failure at index f no index above f is run. So
  // every seed below the lowest failure ran, and the failure reported does
  // not depend on which thread got which seed.
  std::atomic<size_t> next{0};
  std::atomic<size_t> fail_bound{n}; // lowest failing index so far
  std::atomic<bool> time_up{false};
  std::mutex mtx; // guards the counters below and res.first_failure
  size_t run = 0;
  size_t passed = 0;
  size_t failed = 0;
  size_t lowest = n;
  std::string lowest_message;

  auto worker = [&] {
    for (;;) {
      if (limited && std::chrono::steady_clock::now() >= deadline) {
        time_up = true;
        return;
      }
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      if (opts.stop_at_first_failure && i > fail_bound.load()) return;
      auto why = check_seed(scenario, seeds[i], opts.determinism);
      std::lock_guard<std::mutex> guard{mtx};
      ++run;
      if (!why) {
        ++passed;
        continue;
      }
      ++failed;
      if (i < lowest) {
        lowest = i;
        lowest_message = std::move(*why);
        fail_bound = i;
      }
    }
  };

  // Each worker thread creates and destroys its own networks. That is safe
  // to do concurrently: a network's actor system, scheduler and clock are
  // its own, and the runtime's per-thread state (current shard, fast-path
  // spares, buffer pool) is thread_local; the remaining globals (log level,
  // spare-slot ids) are atomics. tests/sim/sim_sweep_test.cpp runs real
  // scenarios on parallel threads, also under TSan in CI.
  std::vector<std::thread> threads;
  threads.reserve(jobs);
  try {
    for (unsigned j = 0; j < jobs; ++j)
      threads.emplace_back(worker);
  } catch (...) {
    next = n; // the started workers finish their seed and stop
    for (auto& t : threads)
      t.join();
    throw;
  }
  for (auto& t : threads)
    t.join();

  res.seeds_run = run;
  res.seeds_passed = passed;
  res.seeds_failed = failed;
  res.not_run = n - run;
  res.timed_out = time_up && res.not_run > 0;
  res.stopped_at_failure = !res.timed_out && lowest < n && res.not_run > 0;
  if (lowest < n) {
    auto seed = seeds[lowest];
    res.first_failure =
        seed_failure{seed, std::move(lowest_message),
                     opts.replay_command ? opts.replay_command(seed)
                                         : default_replay_command(seed)};
  }
  res.elapsed = std::chrono::steady_clock::now() - start;
  return res;
}

std::string sweep_result::summary() const {
  std::ostringstream out;
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.2f",
                std::chrono::duration<double>(elapsed).count());
  out << "sweep of seeds " << seeds << " on " << jobs
      << (jobs == 1 ? " thread" : " threads")
      << (determinism ? ", each seed run twice (determinism)" : "") << ": "
      << secs << " s\n";
  if (seed_from_env)
    out << "SHARDWIRE_SIM_SEED chose the seed (a replay): unset it to sweep\n";
  if (first_failure) {
    out << "seed " << first_failure->seed << " failed";
    if (seeds_failed > 1)
      out << " (the lowest of " << seeds_failed << " failing seeds)";
    out << ":\n";
    std::istringstream msg{first_failure->message};
    for (std::string line; std::getline(msg, line);)
      out << "  " << line << '\n';
    out << "replay: " << first_failure->replay << '\n';
  }
  if (not_run > 0) {
    out << not_run << (not_run == 1 ? " seed" : " seeds") << " not run";
    if (timed_out)
      out << ": the time limit ran out";
    else if (stopped_at_failure)
      out << ": the sweep stops at the first failure";
    out << '\n';
  }
  out << "passed: " << seeds_passed << " of " << seeds_total << " seeds";
  if (first_failure)
    out << ", first failing seed " << first_failure->seed
        << " (replay: " << first_failure->replay << ")";
  out << '\n';
  return out.str();
}

} // namespace shardwire::sim
