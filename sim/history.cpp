#include "sim/history.hpp"

#include <nlohmann/json.hpp>

#include <istream>
#include <limits>
#include <ostream>
#include <utility>

namespace shardwire::sim {

const char* to_string(op_status s) noexcept {
  switch (s) {
  case op_status::ok:
    return "ok";
  case op_status::fail:
    return "fail";
  case op_status::unknown:
    return "unknown";
  }
  return "unknown";
}

// -- history ----------------------------------------------------------------

history::history(std::vector<operation> ops) {
  ops_.reserve(ops.size());
  for (auto& op : ops)
    add(std::move(op));
}

history::history(const history& other) {
  std::lock_guard guard{other.mtx_};
  ops_ = other.ops_;
  pending_ = other.pending_;
}

history::history(history&& other) noexcept {
  std::lock_guard guard{other.mtx_};
  ops_ = std::move(other.ops_);
  pending_ = std::move(other.pending_);
  other.ops_.clear();
  other.pending_.clear();
}

history& history::operator=(history other) noexcept {
  std::lock_guard guard{mtx_};
  ops_ = std::move(other.ops_);
  pending_ = std::move(other.pending_);
  return *this;
}

std::chrono::nanoseconds history::steady_now() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
}

uint64_t history::invoke(uint64_t client, call c, std::chrono::nanoseconds at) {
  std::lock_guard guard{mtx_};
  operation op;
  op.id = ops_.size();
  op.client = client;
  op.what = std::move(c);
  op.invoke = at;
  ops_.push_back(std::move(op));
  pending_.push_back(true);
  return ops_.back().id;
}

bool history::complete_ok(uint64_t id, std::optional<std::string> output,
                          std::chrono::nanoseconds at) {
  std::lock_guard guard{mtx_};
  if (id >= ops_.size() || !pending_[id] || at < ops_[id].invoke) return false;
  pending_[id] = false;
  ops_[id].status = op_status::ok;
  ops_[id].output = std::move(output);
  ops_[id].ret = at;
  return true;
}

bool history::complete_fail(uint64_t id, std::chrono::nanoseconds at) {
  std::lock_guard guard{mtx_};
  if (id >= ops_.size() || !pending_[id] || at < ops_[id].invoke) return false;
  pending_[id] = false;
  ops_[id].status = op_status::fail;
  ops_[id].ret = at;
  return true;
}

bool history::complete_unknown(uint64_t id) {
  std::lock_guard guard{mtx_};
  if (id >= ops_.size() || !pending_[id]) return false;
  pending_[id] = false;
  ops_[id].status = op_status::unknown;
  ops_[id].ret.reset();
  return true;
}

uint64_t history::add(operation op) {
  std::lock_guard guard{mtx_};
  op.id = ops_.size();
  if (op.status != op_status::unknown && (!op.ret || *op.ret < op.invoke))
    op.status = op_status::unknown;
  if (op.status == op_status::unknown) op.ret.reset();
  ops_.push_back(std::move(op));
  pending_.push_back(false);
  return ops_.back().id;
}

std::vector<operation> history::operations() const {
  std::lock_guard guard{mtx_};
  auto result = ops_;
  for (size_t i = 0; i < result.size(); ++i) {
    if (pending_[i]) {
      result[i].status = op_status::unknown;
      result[i].ret.reset();
    }
  }
  return result;
}

size_t history::size() const {
  std::lock_guard guard{mtx_};
  return ops_.size();
}

void history::write_jsonl(std::ostream& out) const {
  using nlohmann::json;
  auto value = [](const std::optional<std::string>& v) -> json {
    return v ? json(*v) : json(nullptr);
  };
  for (const auto& op : operations()) {
    json j = json::object();
    j["client"] = op.client;
    j["kind"] = op.what.kind;
    j["key"] = op.what.key;
    j["input"] = value(op.what.input);
    if (op.what.expected || op.what.kind == "cas")
      j["expected"] = value(op.what.expected);
    j["output"] = value(op.output);
    j["status"] = to_string(op.status);
    j["invoke"] = op.invoke.count();
    j["return"] = op.ret ? json(op.ret->count()) : json(nullptr);
    // replace: a recorded value may hold arbitrary bytes, and writing a
    // file must not throw halfway through.
    out << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
}

// -- reading JSON lines -------------------------------------------------------

namespace {

using nlohmann::json;

// Why a line was refused: the field (empty: the whole line) and the reason.
struct refusal {
  std::string field;
  std::string what;
};

std::optional<refusal> read_string(const json& obj, const char* field,
                                   bool nullable, bool required,
                                   std::optional<std::string>& out) {
  auto it = obj.find(field);
  if (it == obj.end()) {
    if (required) return refusal{field, "missing"};
    return std::nullopt;
  }
  if (it->is_null()) {
    if (!nullable) return refusal{field, "must be a string, not null"};
    return std::nullopt;
  }
  if (!it->is_string()) return refusal{field, "must be a string"};
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_history_string_bytes)
    return refusal{field, "longer than " +
                              std::to_string(max_history_string_bytes) +
                              " bytes"};
  out = s;
  return std::nullopt;
}

std::optional<refusal> read_time(const json& obj, const char* field,
                                 std::optional<std::chrono::nanoseconds>& out) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return refusal{field, "out of range for int64 nanoseconds"};
    out = std::chrono::nanoseconds{static_cast<int64_t>(v)};
    return std::nullopt;
  }
  if (it->is_number_integer()) {
    out = std::chrono::nanoseconds{it->get<int64_t>()};
    return std::nullopt;
  }
  return refusal{field, "must be an integer (nanoseconds)"};
}

std::optional<refusal> parse_operation(const std::string& line, operation& op) {
  // allow_exceptions = false: bad JSON yields a discarded value instead of
  // an exception; type checks below come before every get<>().
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded()) return refusal{"", "not valid JSON"};
  if (!j.is_object()) return refusal{"", "not a JSON object"};
  static const char* const known[] = {"client", "kind",     "key",
                                      "input",  "expected", "output",
                                      "status", "invoke",   "return"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool found = false;
    for (const char* k : known)
      found = found || it.key() == k;
    if (!found) return refusal{it.key().substr(0, 64), "unknown field"};
  }
  auto client = j.find("client");
  if (client == j.end()) return refusal{"client", "missing"};
  if (!client->is_number_unsigned())
    return refusal{"client", "must be an unsigned integer"};
  op.client = client->get<uint64_t>();

  std::optional<std::string> kind, key, status;
  if (auto r = read_string(j, "kind", false, true, kind)) return r;
  if (kind->empty()) return refusal{"kind", "empty"};
  op.what.kind = std::move(*kind);
  if (auto r = read_string(j, "key", false, false, key)) return r;
  op.what.key = key.value_or("");
  if (auto r = read_string(j, "input", true, false, op.what.input)) return r;
  if (auto r = read_string(j, "expected", true, false, op.what.expected))
    return r;
  if (auto r = read_string(j, "output", true, false, op.output)) return r;
  if (auto r = read_string(j, "status", false, true, status)) return r;
  if (*status == "ok")
    op.status = op_status::ok;
  else if (*status == "fail")
    op.status = op_status::fail;
  else if (*status == "unknown")
    op.status = op_status::unknown;
  else
    return refusal{"status", "must be \"ok\", \"fail\" or \"unknown\""};

  std::optional<std::chrono::nanoseconds> invoke;
  if (auto r = read_time(j, "invoke", invoke)) return r;
  if (!invoke) return refusal{"invoke", "missing"};
  op.invoke = *invoke;
  if (auto r = read_time(j, "return", op.ret)) return r;
  if (op.status == op_status::unknown) {
    if (op.ret) return refusal{"return", "must be null or missing for unknown"};
  } else {
    if (!op.ret) return refusal{"return", "missing (required for ok and fail)"};
    if (*op.ret < op.invoke) return refusal{"return", "before invoke"};
  }
  return std::nullopt;
}

// Reads one line of at most max_history_line_bytes into `line`. Returns
// false at the end of input; sets `too_long` (and skips the rest of the
// line) for an over-long one, so no input makes us buffer unbounded bytes.
bool read_line(std::istream& in, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  auto* buf = in.rdbuf();
  if (buf == nullptr) return false;
  bool any = false;
  for (;;) {
    auto c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) return any;
    any = true;
    if (c == '\n') return true;
    if (line.size() >= max_history_line_bytes)
      too_long = true;
    else
      line.push_back(static_cast<char>(c));
  }
}

bool blank(const std::string& line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

} // namespace

read_result read_jsonl(std::istream& in) {
  read_result result;
  std::vector<operation> ops;
  std::string line;
  bool too_long = false;
  size_t line_no = 0;
  auto refuse = [&](const refusal& r) {
    result.line = line_no;
    result.error = "line " + std::to_string(line_no) + ": ";
    if (!r.field.empty()) result.error += r.field + ": ";
    result.error += r.what;
    return result;
  };
  while (read_line(in, line, too_long)) {
    ++line_no;
    if (too_long)
      return refuse(
          {"",
           "longer than " + std::to_string(max_history_line_bytes) + " bytes"});
    if (blank(line)) continue;
    if (ops.size() >= max_history_operations)
      return refuse({"", "more than " + std::to_string(max_history_operations) +
                             " operations"});
    operation op;
    if (auto r = parse_operation(line, op)) return refuse(*r);
    op.id = ops.size();
    ops.push_back(std::move(op));
  }
  if (in.bad()) {
    result.error = "read error";
    return result;
  }
  result.value.emplace(std::move(ops));
  return result;
}

} // namespace shardwire::sim
