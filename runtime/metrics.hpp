// Metrics: counters that cost almost nothing to collect, rendered in
// Prometheus' text exposition format (0.0.4). docs/metrics.md lists every
// series.
//
// Two kinds of storage, chosen by who writes:
// - `shard_metrics`: one block per shard, owned by the shard object. Each
//   value has a single writer (the shard's thread, except `stalls`, written
//   by the stall monitor's thread), so an update is a relaxed load and a
//   relaxed store: no lock-prefixed instruction on the data path. Any thread
//   may read at any time (a scrape), and sees each value whole, possibly a
//   little behind.
// - `metrics_registry`: process-wide labelled counters and gauges for code
//   that runs off the shards (supervisors, nodes). Families and label sets
//   are made under a mutex, once; an update is one relaxed atomic add on the
//   value the caller keeps a reference to.
//
// Collection can be switched off (`runtime_config::metrics_collect`,
// `--shardwire.metrics-collect=false`): the shard-side updates on the data
// path are then skipped behind one predictable branch on a flag in the same
// cache line as the counters. (A compile-time switch is not offered: the
// measured cost with collection on is within noise of off, see
// docs/performance.md.) Registry counters are always collected: they are
// not on a data path.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardwire {

class runtime;

/// A value with exactly one writing thread, readable from any thread.
/// `add` and `raise_to` must only be called by that one writer.
class single_writer_value {
public:
  /// Adds `n` (a counter, or a gauge going up).
  void add(uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  /// Subtracts `n` (a gauge going down).
  void sub(uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }

  /// Raises the value to `x` if it is below (a high-water gauge).
  void raise_to(uint64_t x) noexcept {
    if (x > v_.load(std::memory_order_relaxed))
      v_.store(x, std::memory_order_relaxed);
  }

  /// The value now; any thread.
  uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> v_{0};
};

/// One shard's counters. Lives in its shard object, on cache lines of its
/// own (other threads write the shard's neighbouring fields).
struct alignas(64) shard_metrics {
  /// Whether data-path updates happen. Set before the shard starts; read
  /// by the shard thread on every update, so it sits with the counters.
  bool enabled = true;

  /// Stream connections (TCP, Unix, adopted sockets; not pipes) between
  /// their `connected` and their `lost` (gauge).
  single_writer_value open_connections;
  /// Connections accepted by listeners running on this shard (wherever
  /// placement then put them).
  single_writer_value accepted;
  /// Bytes read from and written to stream transports of this shard.
  single_writer_value bytes_in;
  single_writer_value bytes_out;
  /// A stream transport stopped reading: read back-pressure (the
  /// protocol's unprocessed data passed the high mark) or `pause_reading`.
  single_writer_value read_pauses;
  /// A protocol of this shard was sent `pause` (write buffer above its
  /// high mark).
  single_writer_value write_pauses;
  /// The most queued messages one pinned actor handled in one turn (gauge
  /// of the maximum since start): a backlog shows up to
  /// `--shardwire.max-throughput`, the most one turn takes.
  single_writer_value max_mailbox_depth;
  /// Messages to pinned actors of this shard handled at once inside the
  /// send (the co-located fast path, pinned.hpp), and through the mailbox.
  single_writer_value fast_deliveries;
  single_writer_value queued_deliveries;
  /// Times the shard's fd poller was woken by its epoll.
  single_writer_value poller_wakeups;
  /// Handlers that ran past `--shardwire.stall-ms` (written by the stall
  /// monitor thread, its single writer; counted even with collection off).
  single_writer_value stalls;
};

/// Prometheus metric types used here.
enum class metric_type { counter, gauge };

/// Label pairs (name, value) of one series, in the order given.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

/// A process-wide value any thread may update (atomic read-modify-write:
/// for code off the data path).
class shared_value {
public:
  void add(uint64_t n = 1) noexcept {
    v_.fetch_add(n, std::memory_order_relaxed);
  }
  void set(uint64_t x) noexcept { v_.store(x, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> v_{0};
};

/// A metric family: one name, help text and type, and its labelled series.
/// Thread-safe. Owned by its registry; references stay valid as long as it.
class metrics_family {
public:
  metrics_family(std::string name, std::string help, metric_type type);

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  metric_type type() const noexcept { return type_; }

  /// The series with exactly these labels, made (at zero) on first use.
  /// Keep the reference rather than calling this per update: it takes a
  /// mutex. Label names must match [a-zA-Z_][a-zA-Z0-9_]*; values may be
  /// any text (escaped when rendered).
  shared_value& counter(const metric_labels& labels = {});

  /// Appends this family in text format 0.0.4 (HELP, TYPE, each series).
  void render(std::string& out) const;

private:
  std::string name_;
  std::string help_;
  metric_type type_;
  mutable std::mutex mtx_;
  // Ordered, so that output is stable; values are never moved.
  std::map<metric_labels, std::unique_ptr<shared_value>> series_;
};

/// A set of metric families. Thread-safe.
class metrics_registry {
public:
  /// The family `name`, made on first use. A second call with the same
  /// name returns the same family; throws std::logic_error if its type
  /// differs, if `name` is not a valid metric name, or if it is the name
  /// of a per-shard series (which `render_prometheus` writes). Counter
  /// names should end in `_total` (Prometheus' convention).
  metrics_family& family(const std::string& name, const std::string& help,
                         metric_type type);

  /// Appends every family, in name order.
  void render(std::string& out) const;

  /// The family called `name`, or null if none was made.
  metrics_family* find(const std::string& name) const;

  /// The process's default registry (as Prometheus client libraries have):
  /// supervisors and nodes count in it; `render_prometheus` includes it.
  /// Lives until the process exits.
  static metrics_registry& global();

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::unique_ptr<metrics_family>> families_;
};

/// Escapes a label value for the text format: backslash, double quote and
/// newline become \\, \" and \n.
std::string escape_label_value(std::string_view value);

/// The whole exposition: every shard's counters (label `shard`) of `rt`,
/// then the families of `reg`. Any thread; does not stop the shards.
std::string
render_prometheus(const runtime& rt,
                  const metrics_registry& reg = metrics_registry::global());

} // namespace shardwire
