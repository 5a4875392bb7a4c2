// Prometheus' /metrics over shardwire's HTTP server: what a program's
// `--metrics=HOST:PORT` option starts (runtime_config::metrics;
// docs/metrics.md).
//
// GET (or HEAD) /metrics answers the text exposition format 0.0.4:
// `render_prometheus(rt)` (every shard's counters and the global registry's
// families, runtime/metrics.hpp) followed by the program's own text, if it
// has some (chaos_proxy adds Toxiproxy's series). Rendering reads relaxed
// counters and takes the registry's lock briefly, so it is answered on the
// connection's shard without blocking it. Any other path answers 404, any
// other method on /metrics 405.
#pragma once

#include "runtime/config.hpp"
#include "tools/http_server.hpp"

#include <caf/expected.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shardwire {

class runtime;

/// Text a program appends to the exposition (whole families, each with its
/// HELP and TYPE lines). Called on a shard thread: it must not block.
using metrics_extra = std::function<std::string()>;

/// The usual answer to GET /metrics: `render_prometheus(rt)` then
/// `extra()`, rendered on the shard.
http_handler metrics_handler(runtime& rt, metrics_extra extra = {});

/// Serves /metrics on `host:port` (0 picks a port: see
/// `http_server::address`): `handler` answers GET and HEAD /metrics (a
/// program whose series cannot be rendered on a shard answers from its own
/// thread, as chaos_proxy does); other paths are answered 404 and other
/// methods 405 here. Errors: those of `http_server::start`.
caf::expected<http_server> serve_metrics(runtime& rt, const std::string& host,
                                         uint16_t port, http_handler handler);

/// What a program's main calls after starting its runtime: nothing when
/// `cfg.metrics` is empty; otherwise starts the endpoint (with
/// `metrics_handler(rt)` when `handler` is empty) and prints
/// "metrics on HOST:PORT" with `print`, or prints
/// "error: --metrics: cannot serve on HOST:PORT: why" and returns the
/// error. `cfg` was checked by `parse_args` (a malformed value is refused
/// there).
caf::expected<std::optional<http_server>>
serve_metrics_option(runtime& rt, const runtime_config& cfg,
                     const std::function<void(std::string_view)>& print,
                     http_handler handler = {});

} // namespace shardwire
