#include "tools/toxiproxy_model.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <new>

namespace shardwire::toxiproxy {

using json = nlohmann::json;

namespace {

// Toxiproxy's messages, so that clients matching on them keep working.
constexpr std::string_view bad_body = "bad request body";
constexpr std::string_view missing_field = "missing required field";
constexpr std::string_view invalid_stream =
    "stream was invalid, can be either upstream or downstream";
constexpr std::string_view invalid_type = "invalid toxic type";

api_error bad(std::string_view why) {
  std::string msg{bad_body};
  msg += ": ";
  msg += why;
  return {400, std::move(msg)};
}

// Parses without exceptions: a discarded value means malformed JSON. Any
// other exception from the library is a bug in our use of it, answered as
// a bad body rather than escaping (std::bad_alloc still escapes).
std::optional<api_error> parse_json(std::string_view body, json& out) {
  try {
    out = json::parse(body.begin(), body.end(), nullptr, false);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    return bad(e.what());
  }
  if (out.is_discarded()) return bad("malformed JSON");
  return std::nullopt;
}

// Durations are bounded to a day and sizes to what the pipeline accepts
// (fault_spec.cpp's bounds), so a translated toxic is always valid.
constexpr int64_t max_ms = 24ll * 3600 * 1000;
constexpr int64_t max_us = max_ms * 1000;
constexpr int64_t max_bytes = std::numeric_limits<int64_t>::max() / 4;
constexpr int64_t max_size = std::numeric_limits<uint32_t>::max();
constexpr int64_t max_rate = max_bytes / 1000; // KB/s, times 1000 fits

struct attribute_spec {
  const char* name;
  int64_t max;
};

struct type_spec {
  const char* type;
  std::vector<attribute_spec> attributes;
};

const std::vector<type_spec>& types() {
  static const std::vector<type_spec> t{
      {"latency", {{"latency", max_ms}, {"jitter", max_ms}}},
      {"bandwidth", {{"rate", max_rate}}},
      {"slow_close", {{"delay", max_ms}}},
      {"timeout", {{"timeout", max_ms}}},
      {"reset_peer", {{"timeout", max_ms}}},
      {"slicer",
       {{"average_size", max_size},
        {"size_variation", max_size},
        {"delay", max_us}}},
      {"limit_data", {{"bytes", max_bytes}}},
      {"black_hole", {}},
  };
  return t;
}

const type_spec* find_type(std::string_view type) {
  for (auto& t : types())
    if (type == t.type) return &t;
  return nullptr;
}

// An integral JSON number in [0, max] (1e3 and 100.0 count as integers;
// Toxiproxy's attributes are Go int64s).
std::optional<api_error> get_int(const json& v, std::string_view name,
                                 int64_t max, int64_t& out) {
  std::string what{name};
  if (v.is_number_unsigned()) {
    auto x = v.get<uint64_t>();
    if (x > static_cast<uint64_t>(max))
      return bad(what + " must be at most " + std::to_string(max));
    out = static_cast<int64_t>(x);
    return std::nullopt;
  }
  if (v.is_number_integer()) {
    auto x = v.get<int64_t>();
    if (x < 0) return bad(what + " must not be negative");
    if (x > max) return bad(what + " must be at most " + std::to_string(max));
    out = x;
    return std::nullopt;
  }
  if (v.is_number_float()) {
    auto x = v.get<double>();
    if (!std::isfinite(x) || x != std::floor(x))
      return bad(what + " must be an integer");
    if (x < 0) return bad(what + " must not be negative");
    if (x > static_cast<double>(max))
      return bad(what + " must be at most " + std::to_string(max));
    out = static_cast<int64_t>(x);
    return std::nullopt;
  }
  return bad(what + " must be a number");
}

std::optional<api_error> get_string(const json& v, std::string_view name,
                                    std::string& out) {
  if (!v.is_string()) return bad(std::string{name} + " must be a string");
  out = v.get<std::string>();
  return std::nullopt;
}

std::optional<api_error> get_bool(const json& v, std::string_view name,
                                  bool& out) {
  if (!v.is_boolean()) return bad(std::string{name} + " must be a boolean");
  out = v.get<bool>();
  return std::nullopt;
}

std::optional<api_error> check_address(std::string_view name,
                                       const std::string& value) {
  if (!parse_host_port(value))
    return bad(std::string{name} + " must be HOST:PORT (port 0-65535), got '" +
               value + "'");
  return std::nullopt;
}

// Applies the fields of a proxy object to `cfg`. `create`: name is taken
// from the body; otherwise a name must match cfg.name.
std::optional<api_error> apply_proxy_fields(const json& j, proxy_config& cfg,
                                            bool create) {
  if (!j.is_object()) return bad("expected a JSON object");
  for (auto& [key, v] : j.items()) {
    std::optional<api_error> err;
    if (key == "name") {
      std::string name;
      err = get_string(v, key, name);
      if (!err && create)
        cfg.name = name;
      else if (!err && name != cfg.name)
        err = bad("a proxy is renamed by creating a new one");
    } else if (key == "listen") {
      err = get_string(v, key, cfg.listen);
      if (!err) err = check_address(key, cfg.listen);
    } else if (key == "upstream") {
      err = get_string(v, key, cfg.upstream);
      if (!err && !cfg.upstream.empty()) err = check_address(key, cfg.upstream);
    } else if (key == "enabled") {
      err = get_bool(v, key, cfg.enabled);
    } else if (key == "seed") {
      int64_t seed = 0;
      err = get_int(v, key, std::numeric_limits<int64_t>::max(), seed);
      if (!err) cfg.seed = static_cast<uint64_t>(seed);
    } else if (key == "toxics") {
      // Go's client sends the proxy it holds, toxics included; toxics are
      // managed through their own routes.
    } else {
      err = bad("unknown field \"" + key + "\"");
    }
    if (err) return err;
  }
  return std::nullopt;
}

std::optional<api_error> check_required(const proxy_config& cfg,
                                        std::string_view suffix) {
  auto missing = [&](std::string_view field) {
    std::string msg{missing_field};
    msg += ": ";
    msg += field;
    msg += suffix;
    return api_error{400, std::move(msg)};
  };
  if (cfg.name.empty()) return missing("name");
  if (cfg.upstream.empty()) return missing("upstream");
  return std::nullopt;
}

std::optional<api_error> parse_direction(const json& v, fault_direction& out) {
  if (!v.is_string()) return api_error{400, std::string{invalid_stream}};
  auto s = v.get<std::string>();
  // Toxiproxy's ParseDirection accepts these spellings.
  if (s == "upstream" || s == "up")
    out = fault_direction::up;
  else if (s == "downstream" || s == "down")
    out = fault_direction::down;
  else
    return api_error{400, std::string{invalid_stream}};
  return std::nullopt;
}

std::optional<api_error> get_toxicity(const json& v, double& out) {
  if (!v.is_number()) return bad("toxicity must be a number");
  auto x = v.get<double>();
  if (!(x >= 0.0 && x <= 1.0)) return bad("toxicity must be within 0 and 1");
  out = x;
  return std::nullopt;
}

// Merges `attrs` (a JSON object) into `out` for a toxic of `type`.
std::optional<api_error> merge_attributes(const type_spec& type,
                                          const json& attrs,
                                          std::map<std::string, int64_t>& out) {
  if (attrs.is_null()) return std::nullopt;
  if (!attrs.is_object()) return bad("attributes must be an object");
  for (auto& item : attrs.items()) {
    // Named copies: clang 14 cannot capture a structured binding.
    const auto& key = item.key();
    const auto& v = item.value();
    auto it =
        std::find_if(type.attributes.begin(), type.attributes.end(),
                     [&](const attribute_spec& a) { return key == a.name; });
    if (it == type.attributes.end())
      return bad("unknown attribute \"" + key + "\" for " + type.type);
    int64_t x = 0;
    if (auto err = get_int(v, key, it->max, x)) return err;
    out[key] = x;
  }
  return std::nullopt;
}

json toxic_object(const toxic& t) {
  json attrs = json::object();
  for (auto& [k, v] : t.attributes)
    attrs[k] = v;
  return json{{"name", t.name},
              {"type", t.type},
              {"stream", stream_name(t.stream)},
              {"toxicity", t.toxicity},
              {"attributes", std::move(attrs)}};
}

json proxy_object(const proxy_view& p) {
  json toxics = json::array();
  for (auto& t : p.toxics)
    toxics.push_back(toxic_object(t));
  json j{{"name", p.config.name},
         {"listen", p.config.listen},
         {"upstream", p.config.upstream},
         {"enabled", p.config.enabled},
         {"toxics", std::move(toxics)}};
  if (p.config.seed) j["seed"] = *p.config.seed;
  return j;
}

// Names and addresses come from clients: invalid UTF-8 is replaced rather
// than making dump throw.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

std::string to_json(const api_error& err) {
  return dump(json{{"error", err.message}, {"status", err.status}});
}

// -- addresses ---------------------------------------------------------------

// -- proxies -----------------------------------------------------------------

std::optional<api_error> parse_proxy(std::string_view body, proxy_config& out) {
  json j;
  if (auto err = parse_json(body, j)) return err;
  proxy_config cfg;
  if (auto err = apply_proxy_fields(j, cfg, true)) return err;
  if (auto err = check_required(cfg, "")) return err;
  out = std::move(cfg);
  return std::nullopt;
}

std::optional<api_error> apply_proxy_update(std::string_view body,
                                            proxy_config& cfg) {
  json j;
  if (auto err = parse_json(body, j)) return err;
  auto next = cfg;
  if (auto err = apply_proxy_fields(j, next, false)) return err;
  if (next.upstream.empty()) return bad("upstream must not be empty");
  cfg = std::move(next);
  return std::nullopt;
}

std::optional<api_error> parse_populate(std::string_view body,
                                        std::vector<proxy_config>& out) {
  json j;
  if (auto err = parse_json(body, j)) return err;
  if (!j.is_array()) return bad("expected a JSON array of proxies");
  std::vector<proxy_config> result;
  size_t index = 0;
  for (auto& item : j) {
    ++index;
    proxy_config cfg;
    if (auto err = apply_proxy_fields(item, cfg, true)) {
      err->message += " (proxy " + std::to_string(index) + ")";
      return err;
    }
    if (auto err = check_required(cfg, " at proxy " + std::to_string(index)))
      return err;
    result.push_back(std::move(cfg));
  }
  out = std::move(result);
  return std::nullopt;
}

// -- toxics ------------------------------------------------------------------

const std::vector<std::string>& toxic_types() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto& t : types())
      out.emplace_back(t.type);
    return out;
  }();
  return names;
}

const std::vector<std::string>* toxic_attributes(std::string_view type) {
  static const std::map<std::string, std::vector<std::string>, std::less<>>
      names = [] {
        std::map<std::string, std::vector<std::string>, std::less<>> out;
        for (auto& t : types()) {
          auto& v = out[t.type];
          for (auto& a : t.attributes)
            v.emplace_back(a.name);
        }
        return out;
      }();
  auto it = names.find(type);
  return it == names.end() ? nullptr : &it->second;
}

std::string stream_name(fault_direction d) {
  return d == fault_direction::up ? "upstream" : "downstream";
}

std::optional<api_error> parse_toxic(std::string_view body, toxic& out) {
  json j;
  if (auto err = parse_json(body, j)) return err;
  if (!j.is_object()) return bad("expected a JSON object");
  toxic t;
  const json* attrs = nullptr;
  bool has_type = false;
  for (auto& [key, v] : j.items()) {
    std::optional<api_error> err;
    if (key == "name") {
      if (!v.is_null()) err = get_string(v, key, t.name);
    } else if (key == "type") {
      err = get_string(v, key, t.type);
      has_type = true;
    } else if (key == "stream") {
      if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty()))
        err = parse_direction(v, t.stream);
    } else if (key == "toxicity") {
      if (!v.is_null()) err = get_toxicity(v, t.toxicity);
    } else if (key == "attributes") {
      attrs = &v;
    } else {
      err = bad("unknown field \"" + key + "\"");
    }
    if (err) return err;
  }
  auto* type = has_type ? find_type(t.type) : nullptr;
  if (!type) return api_error{400, std::string{invalid_type}};
  for (auto& a : type->attributes)
    t.attributes[a.name] = 0;
  if (attrs)
    if (auto err = merge_attributes(*type, *attrs, t.attributes)) return err;
  if (t.name.empty()) t.name = t.type + "_" + stream_name(t.stream);
  out = std::move(t);
  return std::nullopt;
}

std::optional<api_error> apply_toxic_update(std::string_view body, toxic& t) {
  json j;
  if (auto err = parse_json(body, j)) return err;
  if (!j.is_object()) return bad("expected a JSON object");
  auto next = t;
  auto* type = find_type(t.type);
  if (!type) return api_error{400, std::string{invalid_type}};
  for (auto& [key, v] : j.items()) {
    std::optional<api_error> err;
    if (v.is_null()) continue; // nothing to change
    if (key == "toxicity") {
      err = get_toxicity(v, next.toxicity);
    } else if (key == "attributes") {
      err = merge_attributes(*type, v, next.attributes);
    } else if (key == "name" || key == "type") {
      // Clients send the whole toxic back; a change is refused.
      std::string x;
      err = get_string(v, key, x);
      if (!err && x != (key == "name" ? t.name : t.type))
        err = bad(key + " cannot be changed; delete and add the toxic");
    } else if (key == "stream") {
      fault_direction d = t.stream;
      err = parse_direction(v, d);
      if (!err && d != t.stream)
        err = bad("stream cannot be changed; delete and add the toxic");
    } else {
      err = bad("unknown field \"" + key + "\"");
    }
    if (err) return err;
  }
  t = std::move(next);
  return std::nullopt;
}

bool timers_from_first_data(const toxic& t) {
  return t.type == "reset_peer";
}

fault_spec to_fault_spec(const toxic& t) {
  auto attr = [&](const char* name) -> int64_t {
    auto it = t.attributes.find(name);
    return it == t.attributes.end() ? 0 : std::max<int64_t>(0, it->second);
  };
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  fault_spec s;
  if (t.type == "latency") {
    s.latency = milliseconds(std::min(attr("latency"), max_ms));
    s.jitter = milliseconds(std::min(attr("jitter"), max_ms));
  } else if (t.type == "bandwidth") {
    // Toxiproxy sleeps len * 1 ms / rate: rate bytes per millisecond.
    s.bandwidth =
        static_cast<uint64_t>(std::min(attr("rate"), max_rate)) * 1000;
  } else if (t.type == "slow_close") {
    s.close_delay = milliseconds(std::min(attr("delay"), max_ms));
  } else if (t.type == "timeout") {
    s.black_hole = true;
    if (auto ms = attr("timeout"); ms > 0)
      s.cut_after_time = milliseconds(std::min(ms, max_ms));
  } else if (t.type == "reset_peer") {
    // Toxiproxy resets T ms after the first chunk reached the toxic and
    // drops that chunk: here the data is swallowed from the start, and the
    // reset timer counts from the first byte (timers_from_first_data).
    s.black_hole = true;
    s.reset_after_time = milliseconds(std::min(attr("timeout"), max_ms));
  } else if (t.type == "slicer") {
    auto avg = std::min(attr("average_size"), max_size);
    auto var = std::min(attr("size_variation"), max_size);
    // An average of 0 would make Toxiproxy's slicer recurse forever; here
    // it relays unsliced.
    if (avg > 0) {
      s.slice_min = static_cast<size_t>(std::max<int64_t>(1, avg - var));
      s.slice_max = static_cast<size_t>(avg + var);
      s.slice_delay = microseconds(std::min(attr("delay"), max_us));
    }
  } else if (t.type == "limit_data") {
    s.cut_after = static_cast<uint64_t>(attr("bytes"));
  } else if (t.type == "black_hole") {
    s.black_hole = true;
  }
  return s;
}

fault_spec compose(const std::vector<toxic>& toxics, fault_direction dir) {
  fault_spec out;
  for (auto& t : toxics)
    if (t.stream == dir) out = stack(out, to_fault_spec(t));
  return out;
}

// -- JSON out ----------------------------------------------------------------

std::string to_json(const toxic& t) {
  return dump(toxic_object(t));
}

std::string to_json(const std::vector<toxic>& toxics) {
  json arr = json::array();
  for (auto& t : toxics)
    arr.push_back(toxic_object(t));
  return dump(arr);
}

std::string to_json(const proxy_view& p) {
  return dump(proxy_object(p));
}

std::string proxies_object_json(const std::vector<proxy_view>& proxies) {
  json obj = json::object();
  for (auto& p : proxies)
    obj[p.config.name] = proxy_object(p);
  return dump(obj);
}

std::string populate_json(const std::vector<proxy_view>& proxies,
                          const api_error* err) {
  json arr = json::array();
  for (auto& p : proxies)
    arr.push_back(proxy_object(p));
  json j{{"proxies", std::move(arr)}};
  if (err) {
    j["error"] = err->message;
    j["status"] = err->status;
  }
  return dump(j);
}

std::string version_json(std::string_view version) {
  return dump(json{{"version", std::string{version}}});
}

} // namespace shardwire::toxiproxy
