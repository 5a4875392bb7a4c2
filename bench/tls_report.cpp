#include "bench/tls_report.hpp"

#include <cstdio>

namespace bench {

namespace {

const row* base_of(const std::vector<row>& rows, size_t size) {
  for (auto& r : rows)
    if (r.server == tls_base && r.size == size) return &r;
  return nullptr;
}

// The paired ratio where there is one, else the ratio of the medians.
double ratio(double paired, double x, const row* base, double row::*field) {
  if (paired > 0) return paired;
  return base != nullptr && base->*field > 0 ? x / (base->*field) : 0;
}

} // namespace

void print_handshakes(const std::vector<row>& rows, size_t connectors) {
  std::printf("\nTLS full handshakes: %zu concurrent connectors, each: "
              "connect, handshake, close_notify, server closes; medians\n",
              connectors);
  std::printf("%-16s %12s %6s %12s %6s %12s %6s %8s\n", "server",
              "handshakes/s", "ratio", "cpu us/hs", "ratio", "core hs/s",
              "ratio", "failed");
  auto* base = base_of(rows, 0);
  for (auto& r : rows) {
    auto show = [&](double x) {
      char buf[16] = "   -";
      if (r.server != tls_base && x > 0)
        std::snprintf(buf, sizeof(buf), "%.2f", x);
      return std::string{buf};
    };
    auto cpu = ratio(r.cpu_ratio, r.cpu_us_per_req, base, &row::cpu_us_per_req);
    std::printf(
        "%-16s %12.0f %6s %12.1f %6s %12.0f %6s %8llu\n", r.server.c_str(),
        r.req_per_s,
        show(ratio(r.thrpt_ratio, r.req_per_s, base, &row::req_per_s)).c_str(),
        r.cpu_us_per_req, show(cpu).c_str(),
        r.cpu_us_per_req > 0 ? 1e6 / r.cpu_us_per_req : 0.0,
        show(cpu > 0 ? 1 / cpu : 0).c_str(),
        static_cast<unsigned long long>(r.failed));
    if (r.corrupt != 0)
      std::printf("  !! %s: %llu handshakes resumed a session\n",
                  r.server.c_str(), static_cast<unsigned long long>(r.corrupt));
  }
}

void print_tls_targets(const std::vector<row>& echo,
                       const std::vector<row>& handshakes) {
  std::printf("\nTLS targets against %s (same run)\n", tls_base);
  auto verdict = [](bool ok) { return ok ? "met" : "MISSED"; };
  for (auto& r : echo) {
    if (r.server == tls_base) continue;
    auto* b = base_of(echo, r.size);
    if (b == nullptr) continue;
    double cpu = ratio(r.cpu_ratio, r.cpu_us_per_req, b, &row::cpu_us_per_req);
    std::printf("%-16s %6zu B  cpu/request %.2f x (target <= 1.10: %s)\n",
                r.server.c_str(), r.size, cpu, verdict(cpu <= 1.10));
  }
  auto* hb = base_of(handshakes, 0);
  for (auto& r : handshakes) {
    if (r.server == tls_base || hb == nullptr) continue;
    double rate = ratio(r.thrpt_ratio, r.req_per_s, hb, &row::req_per_s);
    double cpu = ratio(r.cpu_ratio, r.cpu_us_per_req, hb, &row::cpu_us_per_req);
    // The server's own rate: what its core would do saturated (the
    // measured rate is the clients' where they are the bottleneck).
    double core = cpu > 0 ? 1 / cpu : 0;
    std::printf("%-16s handshakes/s per server core %.2f x (target >= 0.90: "
                "%s); measured handshakes/s %.2f x\n",
                r.server.c_str(), core, verdict(core >= 0.9), rate);
  }
  bool first = true;
  for (auto& r : echo) {
    if (r.idle_bytes_per_conn <= 0) continue;
    if (first) std::printf("idle memory per TLS connection:");
    std::printf("%s %s %.0f B", first ? "" : ",", r.server.c_str(),
                r.idle_bytes_per_conn);
    first = false;
  }
  if (!first) std::printf("\n");
}

} // namespace bench
