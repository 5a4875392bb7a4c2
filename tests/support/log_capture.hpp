// Test support: captures shardwire's log lines for one test case, so a test
// can assert that a warning was (or was not) written.
//
// While a log_capture lives, every line at or above its level goes to it
// instead of stderr (log::set_sink); the destructor restores the previous
// sink and level. Lines come from shard threads, so waits take a deadline
// and a condition variable, never a sleep.
#pragma once

#include "runtime/log.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire::test {

class log_capture {
public:
  /// Captures lines at `lvl` and below (more severe).
  explicit log_capture(log::level lvl = log::level::warning);
  ~log_capture();

  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;

  /// Every captured line so far, in order, each as "LEVEL text" (LEVEL one
  /// of ERROR, WARN, INFO, DEBUG).
  std::vector<std::string> lines() const;

  /// How many captured lines contain `needle`.
  size_t count(std::string_view needle) const;

  /// Waits until at least `n` lines contain `needle`; false on deadline.
  bool wait_for(std::string_view needle, size_t n = 1,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
  void add(log::level lvl, std::string_view line);

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  log::level prev_level_;
  log::sink prev_sink_;
};

} // namespace shardwire::test
