#include "bench/tcp_report.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

namespace bench {

namespace {

// One row from the rounds of one point: the median of each measured figure
// (each on its own), counts of bad bytes and connections summed.
row median_row(const std::vector<const row*>& same) {
  row m = *same.front();
  auto med = [&](double row::*field) {
    std::vector<double> xs;
    for (auto* r : same)
      xs.push_back(r->*field);
    return median(xs);
  };
  m.req_per_s = med(&row::req_per_s);
  m.mib_per_s = med(&row::mib_per_s);
  m.p50_us = med(&row::p50_us);
  m.p99_us = med(&row::p99_us);
  m.cpu_us_per_req = med(&row::cpu_us_per_req);
  m.ir_per_echo = med(&row::ir_per_echo);
  m.corrupt = m.failed = 0;
  for (auto* r : same) {
    m.corrupt += r->corrupt;
    m.failed += r->failed;
  }
  return m; // idle memory: from the first round, the only one measuring it
}

// Point i's `field` against that of the point `base_of` picks in the same
// round, in each round (none where it picks nothing).
template <class BaseOf>
std::vector<double> paired_ratios(const rounds& by_round, size_t i,
                                  double row::*field, BaseOf base_of) {
  std::vector<double> ratios;
  for (auto& rr : by_round) {
    auto base = std::find_if(rr.begin(), rr.end(),
                             [&](const row& r) { return base_of(r, rr[i]); });
    if (base != rr.end() && (*base).*field > 0)
      ratios.push_back(rr[i].*field / (*base).*field);
  }
  return ratios;
}

// Point i's `field` against Asio's, per round: against the Asio windows
// around it (`base_field`) where it was measured between two, else against
// Asio's row of the round.
std::vector<double> asio_ratios(const rounds& by_round, size_t i,
                                double row::*field, double row::*base_field) {
  std::vector<double> ratios;
  for (auto& rr : by_round)
    if (rr[i].*base_field > 0)
      ratios.push_back(rr[i].*field / rr[i].*base_field);
  if (!ratios.empty()) return ratios;
  return paired_ratios(by_round, i, field, [](const row& r, const row& x) {
    return r.server == "asio" && r.size == x.size;
  });
}

// Against 1 shard of the same server and size.
std::vector<double> shard_cpu_ratios(const rounds& by_round, size_t i) {
  return paired_ratios(
      by_round, i, &row::cpu_us_per_req, [](const row& r, const row& x) {
        return r.server == x.server && r.size == x.size && r.shards == 1;
      });
}

} // namespace

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  return n == 0 ? 0 : n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

double quantile(std::vector<double> xs, double q) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  auto pos = q * static_cast<double>(xs.size() - 1);
  auto lo = static_cast<size_t>(pos);
  auto hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (pos - static_cast<double>(lo)) * (xs[hi] - xs[lo]);
}

std::vector<row> summarize(const rounds& by_round) {
  std::vector<row> rows;
  for (size_t i = 0; i < by_round[0].size(); ++i) {
    std::vector<const row*> same;
    for (auto& rr : by_round)
      same.push_back(&rr[i]);
    rows.push_back(median_row(same));
    if (by_round.size() > 1 && rows.back().server != "asio") {
      auto& r = rows.back();
      r.cpu_ratio = median(round_cpu_ratios(by_round, i));
      r.p99_ratio =
          median(asio_ratios(by_round, i, &row::p99_us, &row::base_p99_us));
      r.thrpt_ratio = median(
          asio_ratios(by_round, i, &row::req_per_s, &row::base_req_per_s));
    }
  }
  return rows;
}

std::vector<double> round_cpu_ratios(const rounds& by_round, size_t i) {
  return asio_ratios(by_round, i, &row::cpu_us_per_req,
                     &row::base_cpu_us_per_req);
}

void print_rows(const std::vector<row>& rows, bool callgrind,
                const std::string& base_server) {
  std::map<size_t, const row*> base; // asio row per size
  for (auto& r : rows)
    if (r.server == base_server) base[r.size] = &r;
  auto ratio = [](double x, double b) {
    char buf[32];
    if (b <= 0) return std::string{"   -"};
    std::snprintf(buf, sizeof(buf), "%.2f", x / b);
    return std::string{buf};
  };
  if (callgrind) {
    std::printf("%-14s %6s %7s %14s %7s\n", "server", "shards", "size",
                "Ir/echo", "ratio");
    for (auto& r : rows) {
      auto* b = base.count(r.size) ? base[r.size] : nullptr;
      std::printf("%-14s %6zu %7zu %14.0f %7s\n", r.server.c_str(), r.shards,
                  r.size, r.ir_per_echo,
                  ratio(r.ir_per_echo, b ? b->ir_per_echo : 0).c_str());
    }
    return;
  }
  std::printf("%-14s %6s %7s %10s %9s %8s %8s %9s %6s %8s %6s %6s %9s %6s\n",
              "server", "shards", "size", "req/s", "MiB/s", "p50 us", "p99 us",
              "cpu us/rq", "ratio", "p99", "ratio", "thrpt", "idle B/c",
              "ratio");
  for (auto& r : rows) {
    auto* b = base.count(r.size) ? base[r.size] : nullptr;
    // The paired ratio where there is one, else this row's figure against
    // Asio's row.
    auto against_asio = [&](double paired, double row::*field) {
      return paired > 0 ? ratio(paired, 1) : ratio(r.*field, b ? b->*field : 0);
    };
    std::printf("%-14s %6zu %7zu %10.0f %9.1f %8.1f %8.1f %9.2f %6s %8.1f "
                "%6s %6s %9.0f %6s\n",
                r.server.c_str(), r.shards, r.size, r.req_per_s, r.mib_per_s,
                r.p50_us, r.p99_us, r.cpu_us_per_req,
                against_asio(r.cpu_ratio, &row::cpu_us_per_req).c_str(),
                r.p99_us, against_asio(r.p99_ratio, &row::p99_us).c_str(),
                against_asio(r.thrpt_ratio, &row::req_per_s).c_str(),
                r.idle_bytes_per_conn,
                against_asio(0, &row::idle_bytes_per_conn).c_str());
    if (r.corrupt != 0 || r.failed != 0)
      std::printf("  !! %s: %llu corrupt bytes, %llu failed connections\n",
                  r.server.c_str(), static_cast<unsigned long long>(r.corrupt),
                  static_cast<unsigned long long>(r.failed));
  }
}

// CPU per request against asio of the same round, per round: how far the
// ratio moves on this machine, which a single run does not show. The
// median of these paired ratios is the table's CPU ratio.
void print_round_ratios(const rounds& by_round,
                        const std::string& base_server) {
  std::printf("\nCPU per request / %s's, per round (median and quartiles "
              "last)\n",
              base_server.c_str());
  for (size_t i = 0; i < by_round[0].size(); ++i) {
    auto& first = by_round[0][i];
    if (first.server == base_server) continue;
    auto ratios = round_cpu_ratios(by_round, i);
    if (ratios.empty()) continue;
    std::printf("%-14s %6zu %7zu  ", first.server.c_str(), first.shards,
                first.size);
    for (double r : ratios)
      std::printf(" %.2f", r);
    std::printf("   median %.3f (%.2f-%.2f)\n", median(ratios),
                quantile(ratios, 0.25), quantile(ratios, 0.75));
  }
}

// Metrics on / off, paired within each round: the two servers run side by
// side and are measured a few hundred milliseconds apart, so the drift of a
// shared machine cancels as it does for the ratios against Asio.
void print_metrics_overhead(const rounds& by_round, bool callgrind) {
  std::printf("\nmetrics on / off (shardwire / shardwire-nometrics), per "
              "round, median last\n");
  for (size_t i = 0; i < by_round[0].size(); ++i) {
    auto& on = by_round[0][i];
    if (on.server != "shardwire") continue;
    for (size_t j = 0; j < by_round[0].size(); ++j) {
      auto& off = by_round[0][j];
      if (off.server != "shardwire-nometrics" || off.size != on.size ||
          off.shards != on.shards)
        continue;
      auto ratios = [&](auto field) {
        std::vector<double> xs;
        for (auto& round : by_round) {
          double a = round[i].*field;
          double b = round[j].*field;
          if (a > 0 && b > 0) xs.push_back(a / b);
        }
        return xs;
      };
      auto print = [&](const char* what, const std::vector<double>& xs) {
        std::printf("%-18s %7zu %6zu  ", what, on.size, on.shards);
        for (double r : xs)
          std::printf(" %.3f", r);
        std::printf("   median %.3f\n", median(xs));
      };
      if (callgrind) {
        print("Ir/echo", ratios(&row::ir_per_echo));
        continue;
      }
      print("cpu us/req", ratios(&row::cpu_us_per_req));
      print("req/s", ratios(&row::req_per_s));
    }
  }
}

// Throughput and CPU per request by shard count, for each shardwire server
// kind and size: the ratio to N x the 1-shard throughput (target of issue 3:
// >= 0.8 on N free cores) and the CPU per request against 1 shard (with
// rounds, the median of the per-round paired ratios, as for asio).
void print_scaling(const std::vector<row>& rows, const rounds& by_round) {
  std::printf("\nshard scaling (%u CPUs; ratios against 1 shard of the same "
              "server and size)\n",
              std::thread::hardware_concurrency());
  std::printf("%-14s %7s %6s %5s %10s %9s %9s %9s\n", "server", "size",
              "shards", "load", "req/s", "cpu us/rq", "cpu ratio", "vs N x 1");
  for (size_t b = 0; b < rows.size(); ++b) {
    auto& base = rows[b];
    if (base.server == "asio" || base.shards != 1) continue;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto& r = rows[i];
      if (r.server != base.server || r.size != base.size) continue;
      auto n = static_cast<double>(r.shards);
      auto cpu = median(shard_cpu_ratios(by_round, i));
      std::printf(
          "%-14s %7zu %6zu %5zu %10.0f %9.2f %9.2f %9.2f\n", r.server.c_str(),
          r.size, r.shards, r.load_procs, r.req_per_s, r.cpu_us_per_req, cpu,
          base.req_per_s > 0 ? r.req_per_s / (n * base.req_per_s) : 0.0);
    }
  }
  size_t needed = 0;
  for (auto& r : rows)
    needed = std::max(needed, r.shards + r.load_procs);
  if (std::thread::hardware_concurrency() < needed)
    std::printf("(fewer CPUs than shards + load processes: they share cores, "
                "so \"vs N x 1\" measures contention; compare CPU per "
                "request)\n");
}

void append_csv(const std::string& path, const std::vector<row>& rows) {
  std::ofstream out(path, std::ios::app);
  for (auto& r : rows)
    out << r.server << ',' << r.shards << ',' << r.size << ',' << r.req_per_s
        << ',' << r.mib_per_s << ',' << r.p50_us << ',' << r.p99_us << ','
        << r.cpu_us_per_req << ',' << r.idle_bytes_per_conn << ','
        << r.ir_per_echo << ',' << r.cpu_ratio << '\n';
}

} // namespace bench
