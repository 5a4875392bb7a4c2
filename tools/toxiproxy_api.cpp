#include "tools/toxiproxy_api.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/metrics.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <new>
#include <sstream>

namespace shardwire {

using toxiproxy::api_error;
using json = nlohmann::json;

namespace {

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_response error_response(const api_error& err) {
  return json_response(err.status, toxiproxy::to_json(err));
}

http_response no_content() {
  http_response r;
  r.status = 204;
  return r;
}

const api_error proxy_not_found{404, "proxy not found"};
const api_error toxic_not_found{404, "toxic not found"};

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Path segments, percent-decoded (a name may hold any byte); empty
// segments are dropped, so "/proxies/" is "/proxies".
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    auto seg = path.substr(pos, end - pos);
    if (!seg.empty()) {
      std::string s;
      for (size_t i = 0; i < seg.size(); ++i) {
        if (seg[i] == '%' && i + 2 < seg.size() && hex(seg[i + 1]) >= 0 &&
            hex(seg[i + 2]) >= 0) {
          s += static_cast<char>(hex(seg[i + 1]) * 16 + hex(seg[i + 2]));
          i += 2;
        } else {
          s += seg[i];
        }
      }
      out.push_back(std::move(s));
    }
    pos = end + 1;
  }
  return out;
}

// Where a proxy listens and connects: an empty host listens on every IPv4
// interface (Go's ":port") and connects to loopback.
struct addresses {
  host_port listen;
  host_port upstream;
};

std::optional<api_error> resolve_config(const toxiproxy::proxy_config& cfg,
                                        addresses& out) {
  auto l = parse_host_port(cfg.listen);
  auto u = parse_host_port(cfg.upstream);
  if (!l) return api_error{400, "bad request body: listen must be HOST:PORT"};
  if (!u) return api_error{400, "bad request body: upstream must be HOST:PORT"};
  if (u->port == 0)
    return api_error{400, "bad request body: upstream port must not be 0"};
  if (l->host.empty()) l->host = "0.0.0.0";
  if (u->host.empty()) u->host = "127.0.0.1";
  out = {std::move(*l), std::move(*u)};
  return std::nullopt;
}

fault_proxy_stats operator+(fault_proxy_stats a, const fault_proxy_stats& b) {
  a.connections += b.connections;
  a.live_connections += b.live_connections;
  a.upstream_failures += b.upstream_failures;
  a.bytes_up += b.bytes_up;
  a.bytes_down += b.bytes_down;
  a.swallowed_up += b.swallowed_up;
  a.swallowed_down += b.swallowed_down;
  a.writes_up += b.writes_up;
  a.writes_down += b.writes_down;
  a.cuts += b.cuts;
  a.resets += b.resets;
  a.received_up += b.received_up;
  a.received_down += b.received_down;
  return a;
}

// Prometheus label values (backslash, double quote and newline escaped).
std::string label(std::string_view v) {
  return escape_label_value(v);
}

} // namespace

// -- lifecycle ---------------------------------------------------------------

toxiproxy_api::toxiproxy_api(runtime& rt, toxiproxy_api_options opts)
    : rt_(&rt), opts_(std::move(opts)) {
  worker_ = std::thread{[this] { work(); }};
}

toxiproxy_api::~toxiproxy_api() {
  stop();
}

void toxiproxy_api::stop() {
  {
    std::lock_guard<std::mutex> guard{queue_mtx_};
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id())
    worker_.join();
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [name, e] : proxies_)
    e.running.stop();
  proxies_.clear();
}

http_response toxiproxy_api::unavailable() {
  return error_response({503, "chaos_proxy is shutting down"});
}

void toxiproxy_api::post(reply task) {
  {
    std::lock_guard<std::mutex> guard{queue_mtx_};
    if (!stopping_) {
      queue_.push_back(std::move(task));
      queue_cv_.notify_one();
      return;
    }
  }
  task(false);
}

void toxiproxy_api::work() {
  for (;;) {
    reply task;
    bool run = true;
    {
      std::unique_lock<std::mutex> guard{queue_mtx_};
      queue_cv_.wait(guard, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return; // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
      run = !stopping_;
    }
    try {
      task(run);
    } catch (const std::exception& e) {
      // A responder that throws must not end the worker.
      log::error("toxiproxy api: responder failed: ", e.what());
    }
  }
}

// -- requests ----------------------------------------------------------------

http_response toxiproxy_api::handle(const http_request& req) {
  try {
    std::lock_guard<std::mutex> guard{mtx_};
    if (req.method == "HEAD") {
      // The server drops the body of a HEAD answer; route it as GET.
      auto get = req;
      get.method = "GET";
      return route(get);
    }
    return route(req);
  } catch (const std::bad_alloc&) {
    return error_response({500, "out of memory"});
  } catch (const std::exception& e) {
    return error_response({500, std::string{"internal error: "} + e.what()});
  }
}

http_response toxiproxy_api::route(const http_request& req) {
  auto parts = split_path(req.path());
  const auto& m = req.method;
  auto not_allowed = [] { return error_response({405, "method not allowed"}); };
  if (parts.size() == 1 && parts[0] == "version") {
    if (m != "GET") return not_allowed();
    return json_response(200, toxiproxy::version_json(opts_.version));
  }
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (m != "GET") return not_allowed();
    http_response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    // As Toxiproxy's /metrics carries the Go runtime's series, this one
    // carries shardwire's (runtime/metrics.hpp) after the proxies'.
    r.body = metrics() + render_prometheus(*rt_);
    return r;
  }
  if (parts.size() == 1 && parts[0] == "reset") {
    if (m != "POST") return not_allowed();
    // Every proxy enabled and every toxic removed; a proxy that cannot
    // listen again is reported, the others are still reset.
    std::optional<api_error> first;
    for (auto& [name, e] : proxies_) {
      e.toxics.clear();
      push_layers(e);
      if (!e.cfg.enabled) {
        e.cfg.enabled = true;
        if (auto err = start(e)) {
          e.cfg.enabled = false;
          if (!first) first = err;
        }
      }
    }
    if (first) return error_response(*first);
    return no_content();
  }
  if (parts.size() == 1 && parts[0] == "populate") {
    if (m != "POST") return not_allowed();
    std::vector<toxiproxy::proxy_config> cfgs;
    if (auto err = toxiproxy::parse_populate(req.body, cfgs))
      return json_response(err->status, toxiproxy::populate_json({}, &*err));
    std::vector<toxiproxy::proxy_view> done;
    for (auto& cfg : cfgs) {
      entry* e = nullptr;
      if (auto err = create(std::move(cfg), true, e))
        return json_response(err->status,
                             toxiproxy::populate_json(done, &*err));
      done.push_back(view(*e));
    }
    return json_response(201, toxiproxy::populate_json(done, nullptr));
  }
  if (parts.empty() || parts[0] != "proxies")
    return error_response({404, "not found"});
  if (parts.size() == 1) {
    if (m == "GET") {
      std::vector<toxiproxy::proxy_view> all;
      for (auto& [name, e] : proxies_)
        all.push_back(view(e));
      return json_response(200, toxiproxy::proxies_object_json(all));
    }
    if (m == "POST") {
      toxiproxy::proxy_config cfg;
      if (auto err = toxiproxy::parse_proxy(req.body, cfg))
        return error_response(*err);
      entry* e = nullptr;
      if (auto err = create(std::move(cfg), false, e))
        return error_response(*err);
      return json_response(201, toxiproxy::to_json(view(*e)));
    }
    return not_allowed();
  }
  if (parts.size() > 4) return error_response({404, "not found"});
  auto it = proxies_.find(parts[1]);
  if (it == proxies_.end()) {
    // 404 for a proxy that does not exist, on any known route shape.
    bool known =
        parts.size() == 2 ||
        (parts.size() >= 3 &&
         (parts[2] == "toxics" || parts[2] == "stats" || parts[2] == "sever"));
    return error_response(known ? proxy_not_found
                                : api_error{404, "not found"});
  }
  return route_proxy(req, it->second, parts);
}

http_response
toxiproxy_api::route_proxy(const http_request& req, entry& e,
                           const std::vector<std::string>& parts) {
  const auto& m = req.method;
  auto not_allowed = [] { return error_response({405, "method not allowed"}); };
  bool update = m == "POST" || m == "PATCH";
  if (parts.size() == 2) {
    if (m == "GET") return json_response(200, toxiproxy::to_json(view(e)));
    if (m == "DELETE") {
      halt(e);
      auto name = e.cfg.name; // the key outlives the entry it names
      proxies_.erase(name);
      return no_content();
    }
    if (!update) return not_allowed();
    auto next = e.cfg;
    if (auto err = toxiproxy::apply_proxy_update(req.body, next))
      return error_response(*err);
    addresses check;
    if (auto err = resolve_config(next, check)) return error_response(*err);
    bool moved = next.listen != e.cfg.listen ||
                 next.upstream != e.cfg.upstream || next.seed != e.cfg.seed;
    if (moved || !next.enabled) halt(e);
    e.cfg = next;
    if (e.cfg.enabled && !e.running) {
      if (auto err = start(e)) {
        // As Toxiproxy: the new settings stay, the proxy is down.
        e.cfg.enabled = false;
        return error_response(*err);
      }
    }
    return json_response(200, toxiproxy::to_json(view(e)));
  }
  if (parts[2] == "stats" && parts.size() == 3) {
    if (m != "GET") return not_allowed();
    auto x = totals(e);
    json j{{"connections", x.connections},
           {"live_connections", x.live_connections},
           {"upstream_failures", x.upstream_failures},
           {"bytes_up", x.bytes_up},
           {"bytes_down", x.bytes_down},
           {"received_up", x.received_up},
           {"received_down", x.received_down},
           {"swallowed_up", x.swallowed_up},
           {"swallowed_down", x.swallowed_down},
           {"writes_up", x.writes_up},
           {"writes_down", x.writes_down},
           {"cuts", x.cuts},
           {"resets", x.resets}};
    return json_response(200, j.dump());
  }
  if (parts[2] == "sever" && parts.size() == 3) {
    if (m != "POST") return not_allowed();
    e.running.sever_all();
    return no_content();
  }
  if (parts[2] != "toxics") return error_response({404, "not found"});
  if (parts.size() == 3) {
    if (m == "GET") {
      std::vector<toxiproxy::toxic> all;
      for (auto& t : e.toxics)
        all.push_back(t.value);
      return json_response(200, toxiproxy::to_json(all));
    }
    if (m != "POST") return not_allowed();
    toxiproxy::toxic t;
    if (auto err = toxiproxy::parse_toxic(req.body, t))
      return error_response(*err);
    for (auto& s : e.toxics)
      if (s.value.name == t.name)
        return error_response({409, "toxic already exists"});
    toxic_slot slot;
    slot.value = std::move(t);
    slot.id = next_toxic_id_++;
    slot.since = std::chrono::steady_clock::now();
    e.toxics.push_back(std::move(slot));
    push_layers(e);
    return json_response(200, toxiproxy::to_json(e.toxics.back().value));
  }
  auto slot = std::find_if(e.toxics.begin(), e.toxics.end(),
                           [&](auto& s) { return s.value.name == parts[3]; });
  if (slot == e.toxics.end()) return error_response(toxic_not_found);
  if (m == "GET") return json_response(200, toxiproxy::to_json(slot->value));
  if (m == "DELETE") {
    e.toxics.erase(slot);
    push_layers(e);
    return no_content();
  }
  if (!update) return not_allowed();
  if (auto err = toxiproxy::apply_toxic_update(req.body, slot->value))
    return error_response(*err);
  // A changed toxic is drawn again and its timers restart, as Toxiproxy
  // restarts the toxic's stub on every link.
  ++slot->generation;
  slot->since = std::chrono::steady_clock::now();
  push_layers(e);
  return json_response(200, toxiproxy::to_json(slot->value));
}

std::optional<api_error> toxiproxy_api::populate(std::string_view body) {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<toxiproxy::proxy_config> cfgs;
  if (auto err = toxiproxy::parse_populate(body, cfgs)) return err;
  for (auto& cfg : cfgs) {
    entry* e = nullptr;
    if (auto err = create(std::move(cfg), true, e)) return err;
  }
  return std::nullopt;
}

std::vector<toxiproxy::proxy_view> toxiproxy_api::proxies() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<toxiproxy::proxy_view> out;
  for (auto& [name, e] : proxies_)
    out.push_back(view(e));
  return out;
}

// -- the registry ------------------------------------------------------------

std::optional<api_error> toxiproxy_api::create(toxiproxy::proxy_config cfg,
                                               bool replace, entry*& out) {
  addresses check;
  if (auto err = resolve_config(cfg, check)) return err;
  auto it = proxies_.find(cfg.name);
  if (it != proxies_.end()) {
    if (!replace) return api_error{409, "proxy already exists"};
    auto& old = it->second;
    // Populate keeps a proxy whose addresses are unchanged (toxics and
    // enabled state included), as Toxiproxy's AddOrReplace.
    if (old.cfg.listen == cfg.listen && old.cfg.upstream == cfg.upstream) {
      out = &old;
      return std::nullopt;
    }
    halt(old);
    proxies_.erase(it);
  }
  entry e;
  e.cfg = std::move(cfg);
  if (e.cfg.enabled)
    if (auto err = start(e)) return err;
  auto [pos, added] = proxies_.emplace(e.cfg.name, std::move(e));
  out = &pos->second;
  return std::nullopt;
}

std::optional<api_error> toxiproxy_api::start(entry& e) {
  addresses a;
  if (auto err = resolve_config(e.cfg, a)) return err;
  fault_proxy_options o;
  o.listen_host = a.listen.host;
  o.listen_port = a.listen.port;
  o.upstream_host = a.upstream.host;
  o.upstream_port = a.upstream.port;
  o.connect_timeout = opts_.connect_timeout;
  o.seed = e.cfg.seed ? *e.cfg.seed : opts_.default_seed;
  auto p = fault_proxy::start(*rt_, o);
  if (!p)
    return api_error{500,
                     "listen tcp " + e.cfg.listen + ": " + describe(p.error())};
  e.running = std::move(*p);
  // Shown and re-used with the bound port: enabling again listens on the
  // same address, as Toxiproxy does.
  e.cfg.listen = to_string(host_port{a.listen.host, e.running.address().port});
  push_layers(e);
  return std::nullopt;
}

void toxiproxy_api::halt(entry& e) {
  if (!e.running) return;
  e.retired = e.retired + e.running.stats();
  e.retired.live_connections = 0;
  e.running.stop_and_wait(opts_.stop_timeout);
  e.running = fault_proxy{};
}

void toxiproxy_api::push_layers(entry& e) {
  if (!e.running) return;
  std::vector<fault_layer> layers;
  for (auto& s : e.toxics) {
    fault_layer l;
    l.id = s.id;
    l.generation = s.generation;
    l.dir = s.value.stream;
    l.toxicity = s.value.toxicity;
    l.spec = toxiproxy::to_fault_spec(s.value);
    l.since = s.since;
    l.timers_from_first_data = toxiproxy::timers_from_first_data(s.value);
    layers.push_back(std::move(l));
  }
  e.running.set_layers(std::move(layers));
}

toxiproxy::proxy_view toxiproxy_api::view(const entry& e) const {
  toxiproxy::proxy_view v;
  v.config = e.cfg;
  for (auto& s : e.toxics)
    v.toxics.push_back(s.value);
  return v;
}

fault_proxy_stats toxiproxy_api::totals(const entry& e) const {
  if (!e.running) return e.retired;
  return e.retired + e.running.stats();
}

// -- metrics -----------------------------------------------------------------

std::string toxiproxy_api::metrics() const {
  std::ostringstream out;
  struct row {
    std::string labels; // {direction=...,listener=...,proxy=...,upstream=...}
    std::string proxy;  // {proxy=...}
    fault_proxy_stats x;
  };
  std::vector<row> rows;
  for (auto& [name, e] : proxies_) {
    row r;
    r.labels = "listener=\"" + label(e.cfg.listen) + "\",proxy=\"" +
               label(name) + "\",upstream=\"" + label(e.cfg.upstream) + "\"";
    r.proxy = "proxy=\"" + label(name) + "\"";
    r.x = totals(e);
    rows.push_back(std::move(r));
  }
  auto family = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' '
        << type << '\n';
  };
  // Toxiproxy's names and labels (collectors/proxy.go): direction
  // "upstream" is what clients send, "downstream" what they receive.
  family("toxiproxy_proxy_received_bytes_total", "counter",
         "The total bytes received from a given proxy link");
  for (auto& r : rows) {
    out << "toxiproxy_proxy_received_bytes_total{direction=\"downstream\","
        << r.labels << "} " << r.x.received_down << '\n';
    out << "toxiproxy_proxy_received_bytes_total{direction=\"upstream\","
        << r.labels << "} " << r.x.received_up << '\n';
  }
  family("toxiproxy_proxy_sent_bytes_total", "counter",
         "The total bytes sent to a given proxy link");
  for (auto& r : rows) {
    out << "toxiproxy_proxy_sent_bytes_total{direction=\"downstream\","
        << r.labels << "} " << r.x.bytes_down << '\n';
    out << "toxiproxy_proxy_sent_bytes_total{direction=\"upstream\","
        << r.labels << "} " << r.x.bytes_up << '\n';
  }
  auto simple = [&](const char* name, const char* type, const char* help,
                    uint64_t fault_proxy_stats::*field) {
    family(name, type, help);
    for (auto& r : rows)
      out << name << '{' << r.proxy << "} " << r.x.*field << '\n';
  };
  auto directed = [&](const char* name, const char* help,
                      uint64_t fault_proxy_stats::*up,
                      uint64_t fault_proxy_stats::*down) {
    family(name, "counter", help);
    for (auto& r : rows) {
      out << name << "{direction=\"downstream\"," << r.proxy << "} "
          << r.x.*down << '\n';
      out << name << "{direction=\"upstream\"," << r.proxy << "} " << r.x.*up
          << '\n';
    }
  };
  simple("chaos_proxy_connections_total", "counter",
         "Client connections accepted", &fault_proxy_stats::connections);
  simple("chaos_proxy_live_connections", "gauge", "Client connections open now",
         &fault_proxy_stats::live_connections);
  simple("chaos_proxy_upstream_failures_total", "counter",
         "Connections closed because the upstream could not be reached",
         &fault_proxy_stats::upstream_failures);
  directed("chaos_proxy_swallowed_bytes_total",
           "Bytes swallowed by timeout, reset_peer or black_hole",
           &fault_proxy_stats::swallowed_up,
           &fault_proxy_stats::swallowed_down);
  directed("chaos_proxy_writes_total", "Write operations (slices) sent",
           &fault_proxy_stats::writes_up, &fault_proxy_stats::writes_down);
  simple("chaos_proxy_cuts_total", "counter",
         "Connections closed by limit_data or timeout",
         &fault_proxy_stats::cuts);
  simple("chaos_proxy_resets_total", "counter",
         "Connections reset by reset_peer or sever",
         &fault_proxy_stats::resets);
  return out.str();
}

} // namespace shardwire
