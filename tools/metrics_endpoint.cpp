#include "tools/metrics_endpoint.hpp"

#include "actors/endpoint.hpp"
#include "actors/errors.hpp"
#include "runtime/host_port.hpp"
#include "runtime/metrics.hpp"
#include "runtime/runtime.hpp"

#include <utility>

namespace shardwire {

http_handler metrics_handler(runtime& rt, metrics_extra extra) {
  return http_sync_handler(
      [&rt, extra = std::move(extra)](const http_request&) {
        http_response res;
        res.content_type = "text/plain; version=0.0.4; charset=utf-8";
        res.body = render_prometheus(rt);
        if (extra) res.body += extra();
        return res;
      });
}

caf::expected<http_server> serve_metrics(runtime& rt, const std::string& host,
                                         uint16_t port, http_handler handler) {
  if (!handler)
    return make_error(sw_errc::invalid_argument, "serve_metrics: no handler");
  http_server_options opts;
  opts.host = host;
  opts.port = port;
  // A scrape is a small GET: no body is ever needed.
  opts.max_body_bytes = 4096;
  auto route = [handler = std::move(handler)](http_request req,
                                              http_responder respond) {
    if (req.path() != "/metrics")
      std::move(respond)(
          http_error_response(404, "not found; metrics are at /metrics"));
    else if (req.method != "GET" && req.method != "HEAD")
      std::move(respond)(http_error_response(405, "use GET /metrics"));
    else
      handler(std::move(req), std::move(respond));
  };
  return http_server::start(rt, std::move(opts), std::move(route));
}

caf::expected<std::optional<http_server>>
serve_metrics_option(runtime& rt, const runtime_config& cfg,
                     const std::function<void(std::string_view)>& print,
                     http_handler handler) {
  if (cfg.metrics.empty()) return std::optional<http_server>{};
  auto at = parse_host_port(cfg.metrics);
  if (!at || at->host.empty()) {
    auto err = make_error(sw_errc::invalid_argument,
                          "--metrics: not HOST:PORT: " + cfg.metrics);
    print("error: --metrics: '" + cfg.metrics + "' is not HOST:PORT");
    return err;
  }
  if (!handler) handler = metrics_handler(rt);
  auto srv = serve_metrics(rt, at->host, at->port, std::move(handler));
  if (!srv) {
    print("error: --metrics: cannot serve on " + cfg.metrics + ": " +
          describe(srv.error()));
    return srv.error();
  }
  print("metrics on " + to_string(srv->address()));
  return std::optional<http_server>{std::move(*srv)};
}

} // namespace shardwire
