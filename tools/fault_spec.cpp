#include "tools/fault_spec.hpp"

#include "actors/errors.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace shardwire {

namespace {

caf::error bad(std::string_view key, std::string_view value,
               std::string_view why) {
  std::string ctx{key};
  ctx += "=";
  ctx += value;
  ctx += ": ";
  ctx += why;
  return make_error(sw_errc::invalid_argument, std::move(ctx));
}

bool is_off(std::string_view v) {
  return v == "-1" || v == "off" || v == "none";
}

// Parses a non-negative decimal that fits `max`.
bool parse_u64(std::string_view v, uint64_t max, uint64_t& out) {
  if (v.empty()) return false;
  uint64_t x = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc{} || ptr != v.data() + v.size() || x > max) return false;
  out = x;
  return true;
}

// Durations are bounded to a day: anything longer is a typo, and keeps
// time_point arithmetic far from overflow.
constexpr uint64_t max_ms = 24ull * 3600 * 1000;
constexpr uint64_t max_us = max_ms * 1000;

} // namespace

std::string to_string(fault_direction x) {
  return x == fault_direction::up ? "up" : "down";
}

bool fault_spec::is_clean() const noexcept {
  return *this == fault_spec{};
}

const std::vector<std::string>& fault_keys() {
  static const std::vector<std::string> keys{
      "latency-ms",     "jitter-ms",      "bandwidth",    "slice-min",
      "slice-max",      "slice-delay-us", "cut-after",    "reset-after",
      "reset-after-ms", "black-hole",     "cut-after-ms", "close-delay-ms"};
  return keys;
}

caf::error set_fault(fault_spec& spec, std::string_view key,
                     std::string_view value) {
  auto next = spec;
  uint64_t n = 0;
  auto number = [&](uint64_t max) { return parse_u64(value, max, n); };
  if (key == "latency-ms" || key == "jitter-ms") {
    if (!number(max_ms))
      return bad(key, value, "expected 0.." + std::to_string(max_ms));
    (key == "latency-ms" ? next.latency : next.jitter) =
        std::chrono::milliseconds(n);
  } else if (key == "bandwidth") {
    if (!number(std::numeric_limits<uint64_t>::max() / 2))
      return bad(key, value, "expected bytes per second (0 = unlimited)");
    next.bandwidth = n;
  } else if (key == "slice-min" || key == "slice-max") {
    if (!number(std::numeric_limits<uint32_t>::max()))
      return bad(key, value, "expected a size in bytes");
    (key == "slice-min" ? next.slice_min : next.slice_max) =
        static_cast<size_t>(n);
  } else if (key == "slice-delay-us") {
    if (!number(max_us)) return bad(key, value, "expected microseconds");
    next.slice_delay = std::chrono::microseconds(n);
  } else if (key == "cut-after" || key == "reset-after") {
    auto& field = key == "cut-after" ? next.cut_after : next.reset_after;
    if (is_off(value)) {
      field.reset();
    } else {
      if (!number(std::numeric_limits<uint64_t>::max() / 2))
        return bad(key, value, "expected a byte count or -1");
      field = n;
    }
  } else if (key == "reset-after-ms") {
    if (is_off(value)) {
      next.reset_after_time.reset();
    } else {
      if (!number(max_ms))
        return bad(key, value, "expected milliseconds or -1");
      next.reset_after_time = std::chrono::milliseconds(n);
    }
  } else if (key == "cut-after-ms") {
    if (is_off(value)) {
      next.cut_after_time.reset();
    } else {
      if (!number(max_ms))
        return bad(key, value, "expected milliseconds or -1");
      next.cut_after_time = std::chrono::milliseconds(n);
    }
  } else if (key == "close-delay-ms") {
    if (!number(max_ms))
      return bad(key, value, "expected 0.." + std::to_string(max_ms));
    next.close_delay = std::chrono::milliseconds(n);
  } else if (key == "black-hole") {
    if (value == "1" || value == "true" || value == "on")
      next.black_hole = true;
    else if (value == "0" || value == "false" || value == "off")
      next.black_hole = false;
    else
      return bad(key, value, "expected 0 or 1");
  } else {
    return bad(key, value, "unknown fault");
  }
  // Slicing is off while slice_max is 0, so the order in which the two
  // bounds are set does not matter until both are.
  if (next.slice_max > 0 && next.slice_min > next.slice_max)
    return bad(key, value, "slice-min above slice-max");
  spec = next;
  return {};
}

caf::error set_fault(fault_set& faults, std::string_view qualified_key,
                     std::string_view value) {
  auto dot = qualified_key.find('.');
  if (dot == std::string_view::npos)
    return bad(qualified_key, value,
               "expected up.<key>, down.<key> or both.<key>");
  auto dir = qualified_key.substr(0, dot);
  auto key = qualified_key.substr(dot + 1);
  if (dir == "up") return set_fault(faults.up, key, value);
  if (dir == "down") return set_fault(faults.down, key, value);
  if (dir == "both") {
    auto next = faults;
    if (auto err = set_fault(next.up, key, value)) return err;
    if (auto err = set_fault(next.down, key, value)) return err;
    faults = next;
    return {};
  }
  return bad(qualified_key, value, "direction must be up, down or both");
}

std::string get_fault(const fault_spec& spec, std::string_view key) {
  auto opt = [](const auto& x) {
    return x ? std::to_string(static_cast<uint64_t>(*x)) : std::string{"-1"};
  };
  if (key == "latency-ms") return std::to_string(spec.latency.count());
  if (key == "jitter-ms") return std::to_string(spec.jitter.count());
  if (key == "bandwidth") return std::to_string(spec.bandwidth);
  if (key == "slice-min") return std::to_string(spec.slice_min);
  if (key == "slice-max") return std::to_string(spec.slice_max);
  if (key == "slice-delay-us") return std::to_string(spec.slice_delay.count());
  if (key == "cut-after") return opt(spec.cut_after);
  if (key == "reset-after") return opt(spec.reset_after);
  if (key == "reset-after-ms")
    return spec.reset_after_time
               ? std::to_string(spec.reset_after_time->count())
               : std::string{"-1"};
  if (key == "black-hole") return spec.black_hole ? "1" : "0";
  auto opt_ms = [](const std::optional<std::chrono::milliseconds>& x) {
    return x ? std::to_string(x->count()) : std::string{"-1"};
  };
  if (key == "cut-after-ms") return opt_ms(spec.cut_after_time);
  if (key == "close-delay-ms") return std::to_string(spec.close_delay.count());
  return {};
}

namespace {

template <class T>
std::optional<T> smaller(const std::optional<T>& a, const std::optional<T>& b) {
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

// Sums stay within a day per field, as set_fault's bound.
template <class Duration>
Duration capped_sum(Duration a, Duration b) {
  auto cap =
      std::chrono::duration_cast<Duration>(std::chrono::milliseconds(max_ms));
  return std::min(cap, a + b);
}

} // namespace

fault_spec stack(const fault_spec& a, const fault_spec& b) {
  fault_spec r;
  r.latency = capped_sum(a.latency, b.latency);
  r.jitter = capped_sum(a.jitter, b.jitter);
  if (a.bandwidth == 0 || b.bandwidth == 0)
    r.bandwidth = std::max(a.bandwidth, b.bandwidth);
  else
    r.bandwidth = std::min(a.bandwidth, b.bandwidth);
  if (a.slice_max == 0 || b.slice_max == 0) {
    const auto& on = a.slice_max > 0 ? a : b;
    r.slice_min = on.slice_min;
    r.slice_max = on.slice_max;
  } else {
    r.slice_min = std::min(a.slice_min, b.slice_min);
    r.slice_max = std::min(a.slice_max, b.slice_max);
  }
  r.slice_delay = capped_sum(a.slice_delay, b.slice_delay);
  r.cut_after = smaller(a.cut_after, b.cut_after);
  r.reset_after = smaller(a.reset_after, b.reset_after);
  r.reset_after_time = smaller(a.reset_after_time, b.reset_after_time);
  r.black_hole = a.black_hole || b.black_hole;
  r.cut_after_time = smaller(a.cut_after_time, b.cut_after_time);
  r.close_delay = capped_sum(a.close_delay, b.close_delay);
  return r;
}

std::string to_string(const fault_spec& spec) {
  static const fault_spec clean;
  std::string out;
  for (auto& key : fault_keys()) {
    auto v = get_fault(spec, key);
    if (v == get_fault(clean, key)) continue;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += v;
  }
  return out.empty() ? "clean" : out;
}

} // namespace shardwire
