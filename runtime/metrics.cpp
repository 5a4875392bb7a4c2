#include "runtime/metrics.hpp"

#include "runtime/runtime.hpp"
#include "runtime/shard.hpp"

#include <stdexcept>

namespace shardwire {

namespace {

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// HELP text escapes only backslash and newline (text format 0.0.4).
std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

const char* type_name(metric_type t) {
  return t == metric_type::counter ? "counter" : "gauge";
}

void header(std::string& out, std::string_view name, std::string_view help,
            metric_type type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escape_help(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type_name(type);
  out += '\n';
}

void sample(std::string& out, std::string_view name,
            const metric_labels& labels, uint64_t value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    bool first = true;
    for (auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      out += escape_label_value(v);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

// The per-shard series: name, help, type, and where the value is.
struct shard_series {
  const char* name;
  const char* help;
  metric_type type;
  const single_writer_value shard_metrics::*value;
  const char* path = nullptr; // the `path` label of deliveries
};

// Deliveries are one family with a `path` label (fast, queued), so that
// their sum is the total without a third series.
const shard_series shard_table[] = {
    {"shardwire_open_connections", "Stream connections open on the shard.",
     metric_type::gauge, &shard_metrics::open_connections},
    {"shardwire_accepted_connections_total",
     "Connections accepted by listeners on the shard.", metric_type::counter,
     &shard_metrics::accepted},
    {"shardwire_received_bytes_total",
     "Bytes read by stream transports of the shard.", metric_type::counter,
     &shard_metrics::bytes_in},
    {"shardwire_sent_bytes_total",
     "Bytes written by stream transports of the shard.", metric_type::counter,
     &shard_metrics::bytes_out},
    {"shardwire_read_pauses_total",
     "Times a stream transport stopped reading (back-pressure or "
     "pause_reading).",
     metric_type::counter, &shard_metrics::read_pauses},
    {"shardwire_write_pauses_total",
     "Times a protocol was sent pause (write buffer above its high mark).",
     metric_type::counter, &shard_metrics::write_pauses},
    {"shardwire_mailbox_depth_max",
     "Most queued messages one pinned actor of the shard handled in one "
     "turn (at most max-throughput).",
     metric_type::gauge, &shard_metrics::max_mailbox_depth},
    {"shardwire_deliveries_total",
     "Messages handled by pinned actors of the shard, by path.",
     metric_type::counter, &shard_metrics::fast_deliveries, "fast"},
    {"shardwire_deliveries_total", nullptr, metric_type::counter,
     &shard_metrics::queued_deliveries, "queued"},
    {"shardwire_poller_wakeups_total", "Wake-ups of the shard's fd poller.",
     metric_type::counter, &shard_metrics::poller_wakeups},
    {"shardwire_stalls_total",
     "Shard handlers that ran longer than --shardwire.stall-ms.",
     metric_type::counter, &shard_metrics::stalls},
};

} // namespace

// -- metrics_family -----------------------------------------------------------

metrics_family::metrics_family(std::string name, std::string help,
                               metric_type type)
    : name_(std::move(name)), help_(std::move(help)), type_(type) {}

shared_value& metrics_family::counter(const metric_labels& labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = series_.find(labels);
  if (i != series_.end()) return *i->second;
  for (auto& [k, v] : labels)
    if (!valid_name(k, false) || k.compare(0, 2, "__") == 0)
      throw std::logic_error("metric " + name_ + ": invalid label name '" + k +
                             "'");
  return *series_.emplace(labels, std::make_unique<shared_value>())
              .first->second;
}

void metrics_family::render(std::string& out) const {
  header(out, name_, help_, type_);
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [labels, value] : series_)
    sample(out, name_, labels, value->value());
}

// -- metrics_registry ---------------------------------------------------------

metrics_family& metrics_registry::family(const std::string& name,
                                         const std::string& help,
                                         metric_type type) {
  if (!valid_name(name, true))
    throw std::logic_error("invalid metric name '" + name + "'");
  // render_prometheus writes the shard series first: a family of the same
  // name would appear twice in one exposition.
  for (auto& row : shard_table)
    if (name == row.name)
      throw std::logic_error("metric " + name + " is a per-shard series");
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = families_.find(name);
  if (i != families_.end()) {
    if (i->second->type() != type)
      throw std::logic_error("metric " + name +
                             " registered again with another type");
    return *i->second;
  }
  return *families_
              .emplace(name, std::make_unique<metrics_family>(name, help, type))
              .first->second;
}

void metrics_registry::render(std::string& out) const {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [name, fam] : families_)
    fam->render(out);
}

metrics_family* metrics_registry::find(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = families_.find(name);
  return i != families_.end() ? i->second.get() : nullptr;
}

metrics_registry& metrics_registry::global() {
  // Never destroyed: counters may be updated by threads still running
  // while static destructors do (a CAF worker finishing a supervisor).
  static auto* reg = new metrics_registry;
  return *reg;
}

// -- rendering ----------------------------------------------------------------

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string render_prometheus(const runtime& rt, const metrics_registry& reg) {
  std::string out;
  out.reserve(4096);
  for (auto& row : shard_table) {
    if (row.help != nullptr) header(out, row.name, row.help, row.type);
    for (size_t i = 0; i < rt.shard_count(); ++i) {
      metric_labels labels{{"shard", std::to_string(i)}};
      if (row.path != nullptr) labels.emplace_back("path", row.path);
      sample(out, row.name, labels,
             (rt.shard_at(i).metrics().*row.value).value());
    }
  }
  reg.render(out);
  return out;
}

} // namespace shardwire
