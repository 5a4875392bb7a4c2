#include "sim/scenario.hpp"

#include <cstdlib>
#include <sstream>

namespace shardwire::sim {

uint64_t scenario::seed_from_env(uint64_t fallback) {
  const char* env = std::getenv("SHARDWIRE_SIM_SEED");
  if (env == nullptr || *env == '\0') return fallback;
  char* end = nullptr;
  auto value = std::strtoull(env, &end, 10);
  return (end != nullptr && *end == '\0') ? value : fallback;
}

scenario::scenario(uint64_t seed, std::vector<std::string> hosts,
                   network_options opts)
    : seed_(seed_from_env(seed)), net_(std::make_unique<network>(seed_, opts)) {
  for (auto& h : hosts)
    net_->add_host(h);
}

bool scenario::run_until(const std::function<bool()>& pred,
                         sim::duration deadline) {
  return net_->run_until(pred, deadline);
}

std::vector<std::string> scenario::lines() const {
  std::vector<std::string> out;
  std::istringstream in{net_->trace_text()};
  for (std::string line; std::getline(in, line);)
    out.push_back(std::move(line));
  return out;
}

size_t scenario::count(std::string_view text) const {
  size_t n = 0;
  for (auto& line : lines())
    if (line.find(text) != std::string::npos) ++n;
  return n;
}

bool scenario::happened_before(std::string_view a, std::string_view b) const {
  bool seen_a = false;
  for (auto& line : lines()) {
    if (seen_a && line.find(b) != std::string::npos) return true;
    if (line.find(a) != std::string::npos) seen_a = true;
  }
  return false;
}

std::string scenario::report(size_t tail) const {
  std::ostringstream out;
  out << "simulation seed " << seed_ << " (replay: SHARDWIRE_SIM_SEED=" << seed_
      << "), virtual time "
      << std::chrono::duration_cast<std::chrono::microseconds>(net_->now())
             .count()
      << " us\n";
  auto unfired = net_->unfired();
  if (!unfired.empty()) {
    out << "faults that never fired:";
    for (auto& f : unfired)
      out << ' ' << f << ';';
    out << '\n';
  }
  auto all = lines();
  auto from = all.size() > tail ? all.size() - tail : 0;
  out << "trace (last " << (all.size() - from) << " of " << all.size()
      << " events):\n";
  for (auto i = from; i < all.size(); ++i)
    out << all[i] << '\n';
  return out.str();
}

} // namespace shardwire::sim
