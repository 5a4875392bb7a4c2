// Every demo's --metrics=HOST:PORT (tools/metrics_endpoint.hpp), with its
// "metrics on HOST:PORT" or error line written whole on stderr.
#pragma once

#include "demos/print.hpp"
#include "tools/metrics_endpoint.hpp"

#include <optional>
#include <string_view>
#include <utility>

namespace demo {

/// Call right after the runtime started; on an error (already printed) the
/// program exits 1. Keep the result alive until the runtime shuts down.
inline caf::expected<std::optional<shardwire::http_server>>
serve_metrics(shardwire::runtime& rt, const shardwire::runtime_config& cfg,
              shardwire::http_handler handler = {}) {
  return shardwire::serve_metrics_option(
      rt, cfg, [](std::string_view line) { eprintln(line); },
      std::move(handler));
}

} // namespace demo
