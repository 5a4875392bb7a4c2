// Toxiproxy's HTTP API over named fault proxies: chaos_proxy's `--api`
// (docs/chaos-proxy.md "Toxiproxy API"). Each named proxy is a running
// `fault_proxy`; its toxics become the proxy's stacked layers (see
// `fault_layer` and tools/toxiproxy_model.hpp for the translation).
//
// Routes (success status; errors as {"error": "...", "status": N}):
//   GET    /proxies                          200 {name: proxy}
//   POST   /proxies                          201 proxy        400 409 500
//   POST   /populate                         201 {"proxies"}  400 500
//   GET    /proxies/{p}                      200              404
//   POST   /proxies/{p}, PATCH               200              404 400 500
//   DELETE /proxies/{p}                      204              404
//   GET    /proxies/{p}/toxics               200 [toxic]      404
//   POST   /proxies/{p}/toxics               200 toxic        404 400 409
//   GET    /proxies/{p}/toxics/{t}           200              404
//   POST   /proxies/{p}/toxics/{t}, PATCH    200 (merged)     404 400
//   DELETE /proxies/{p}/toxics/{t}           204              404
//   POST   /reset                            204
//   GET    /version                          200 {"version"}
//   GET    /metrics                          200 Prometheus text
// chaos_proxy extras:
//   GET    /proxies/{p}/stats                200 fault counters
//   POST   /proxies/{p}/sever                204 (RST every live connection)
// An unknown path answers 404, a known path with another method 405; HEAD
// is routed as GET (the server sends no body).
//
// Threads: every public member is thread-safe; `handle` serialises requests
// with one mutex and MAY BLOCK (resolving, binding, waiting for a disabled
// proxy's listener to close): never call it on a shard thread. The handler
// from `async_handler` is the shard-safe entry: it queues the request for
// the api's own worker thread and answers from there.
#pragma once

#include "tools/fault_proxy.hpp"
#include "tools/http_message.hpp"
#include "tools/toxiproxy_model.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace shardwire {

class runtime;

struct toxiproxy_api_options {
  /// Seed of a proxy created without a "seed" field (connection k of the
  /// proxy uses seed + k; counted again from 0 each time it starts).
  uint64_t default_seed = 0;
  /// Bound on connecting upstream, for every proxy.
  std::chrono::milliseconds connect_timeout{5000};
  /// How long disabling or deleting a proxy waits for its listener to
  /// close and its connections to end.
  std::chrono::milliseconds stop_timeout{3000};
  /// GET /version's value.
  std::string version = "2.12.0-shardwire";
};

/// The registry of named proxies and the API's request handler.
class toxiproxy_api {
public:
  /// Starts the worker thread; no proxy yet. `rt` must outlive this object.
  explicit toxiproxy_api(runtime& rt, toxiproxy_api_options opts = {});

  /// `stop`.
  ~toxiproxy_api();

  toxiproxy_api(const toxiproxy_api&) = delete;
  toxiproxy_api& operator=(const toxiproxy_api&) = delete;

  /// Answers one request (see the route table above). Never throws; an
  /// unexpected failure answers 500. Blocks (see the header comment).
  http_response handle(const http_request& req);

  /// POST /populate's body (the --config file): creates the proxies, or
  /// replaces one whose listen or upstream differ. Returns the error the
  /// route would answer with, if any (proxies before it stay created).
  std::optional<toxiproxy::api_error> populate(std::string_view json);

  /// The proxies and their toxics, as GET /proxies shows them.
  std::vector<toxiproxy::proxy_view> proxies() const;

  /// A handler for the HTTP server: called on a shard thread, it only
  /// queues the request; the worker thread runs `handle` and then calls the
  /// responder (a move-only callable taking an http_response, callable
  /// once from any thread). After `stop` the responder gets 503 at once.
  /// The handler refers to this object: stop the server first.
  template <class Responder>
  std::function<void(http_request, Responder)> async_handler() {
    return [this](http_request req, Responder respond) {
      // Shared, so the queued task is copyable (std::function) while the
      // responder stays move-only and is called exactly once.
      auto r = std::make_shared<Responder>(std::move(respond));
      auto q = std::make_shared<http_request>(std::move(req));
      post([this, r, q](bool run) {
        (std::move(*r))(run ? handle(*q) : unavailable());
      });
    };
  }

  /// Answers queued requests with 503, joins the worker and stops every
  /// proxy. Idempotent; blocks like `handle`.
  void stop();

private:
  struct toxic_slot {
    toxiproxy::toxic value;
    uint64_t id = 0;
    uint64_t generation = 0;
    std::chrono::steady_clock::time_point since;
  };

  struct entry {
    toxiproxy::proxy_config cfg;
    std::vector<toxic_slot> toxics;
    fault_proxy running;       // empty while disabled
    fault_proxy_stats retired; // counters of earlier runs
  };

  using reply = std::function<void(bool run)>;

  static http_response unavailable();
  void post(reply task);
  void work();

  http_response route(const http_request& req);
  http_response route_proxy(const http_request& req, entry& e,
                            const std::vector<std::string>& parts);
  std::optional<toxiproxy::api_error> start(entry& e);
  void halt(entry& e);
  void push_layers(entry& e);
  std::optional<toxiproxy::api_error> create(toxiproxy::proxy_config cfg,
                                             bool replace, entry*& out);
  toxiproxy::proxy_view view(const entry& e) const;
  fault_proxy_stats totals(const entry& e) const;
  std::string metrics() const;

  runtime* rt_;
  toxiproxy_api_options opts_;

  mutable std::mutex mtx_; // the registry; held for a whole request
  std::map<std::string, entry> proxies_;
  uint64_t next_toxic_id_ = 1;

  std::mutex queue_mtx_;
  std::condition_variable queue_cv_;
  std::deque<reply> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

} // namespace shardwire
