#include "tests/support/log_capture.hpp"

namespace shardwire::test {

namespace {

const char* level_name(log::level lvl) {
  switch (lvl) {
  case log::level::error:
    return "ERROR ";
  case log::level::warning:
    return "WARN ";
  case log::level::info:
    return "INFO ";
  default:
    return "DEBUG ";
  }
}

} // namespace

log_capture::log_capture(log::level lvl) : prev_level_(log::current()) {
  prev_sink_ = log::set_sink(
      [this](log::level l, std::string_view line) { add(l, line); });
  log::set_level(lvl);
}

log_capture::~log_capture() {
  log::set_level(prev_level_);
  log::set_sink(std::move(prev_sink_));
}

void log_capture::add(log::level lvl, std::string_view line) {
  std::string entry = level_name(lvl);
  entry += line;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    lines_.push_back(std::move(entry));
  }
  cv_.notify_all();
}

std::vector<std::string> log_capture::lines() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return lines_;
}

size_t log_capture::count(std::string_view needle) const {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t n = 0;
  for (const auto& line : lines_)
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

bool log_capture::wait_for(std::string_view needle, size_t n,
                           std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> guard{mtx_};
  return cv_.wait_for(guard, timeout, [&] {
    size_t found = 0;
    for (const auto& line : lines_)
      if (line.find(needle) != std::string::npos) ++found;
    return found >= n;
  });
}

} // namespace shardwire::test
