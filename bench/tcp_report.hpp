// The TCP part's results: one row per measured point, the statistics over
// rounds (medians, paired ratios against Asio) and the printed tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

/// One server at one message size and shard count: one window (or run), or
/// the medians over rounds.
struct row {
  std::string server;
  size_t shards = 1;
  size_t size = 0;
  size_t load_procs = 1;
  double req_per_s = 0;
  double mib_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double cpu_us_per_req = 0;
  double idle_bytes_per_conn = 0;
  double ir_per_echo = 0;
  // Against Asio: the medians of the per-round paired ratios when there
  // are rounds (0: the ratio of the medians is shown).
  double cpu_ratio = 0;
  double p99_ratio = 0;
  double thrpt_ratio = 0;
  // Asio's figures around this measurement: the means of the Asio windows
  // just before and just after it (0: it was not measured between two).
  double base_cpu_us_per_req = 0;
  double base_p99_us = 0;
  double base_req_per_s = 0;
  uint64_t corrupt = 0;
  uint64_t failed = 0;
};

/// Rounds of measurements: by_round[k][i] is point i in round k; every
/// round lists the same points in the same order.
using rounds = std::vector<std::vector<row>>;

/// The median of xs (0 when empty).
double median(std::vector<double> xs);

/// The q-quantile of xs (0 <= q <= 1), interpolated.
double quantile(std::vector<double> xs, double q);

/// One row per point: the median of each figure over the rounds, counts of
/// corrupt bytes and failed connections summed, idle memory from the first
/// round; with several rounds, the ratios against Asio are the medians of
/// the per-round paired ratios.
std::vector<row> summarize(const rounds& by_round);

/// Point i's CPU per request against Asio's, per round: against the Asio
/// windows around it where it was measured between two, else against
/// Asio's row of the round.
std::vector<double> round_cpu_ratios(const rounds& by_round, size_t i);

/// The table: req/s, MiB/s, latency, CPU per request, idle memory, each
/// with its ratio to Asio of the same size (or Ir/echo in callgrind mode).
/// `base` names the baseline's rows ("asio-ssl" for the TLS table); the
/// paired ratios of the other rows are against it already.
void print_rows(const std::vector<row>& rows, bool callgrind,
                const std::string& base = "asio");

/// Every round's CPU ratio against Asio (the `base` rows), with median and
/// quartiles.
void print_round_ratios(const rounds& by_round,
                        const std::string& base = "asio");

/// Throughput and CPU per request by shard count against 1 shard of the
/// same server and size.
void print_scaling(const std::vector<row>& rows, const rounds& by_round);

/// shardwire with metrics collection on against the same server with it
/// off (shardwire-nometrics) at each size and shard count: per round, CPU
/// per request and throughput (or, in callgrind mode, instructions per
/// echo) of on / off, with the medians.
void print_metrics_overhead(const rounds& by_round, bool callgrind);

/// Appends the rows to a CSV file (columns in bench/plot.gp).
void append_csv(const std::string& path, const std::vector<row>& rows);

} // namespace bench
