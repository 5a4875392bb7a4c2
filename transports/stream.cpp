#include "transports/stream.hpp"

#include "runtime/runtime.hpp"
#include "transports/detail/await_result.hpp"

#include <algorithm>

namespace shardwire {

stream_settings stream_settings::from(const runtime& rt) {
  stream_settings s;
  auto& cfg = rt.config();
  s.read_chunk_size = cfg.read_chunk_size;
  s.read_high_water = cfg.read_high_water;
  s.read_low_water = std::min(cfg.read_low_water, cfg.read_high_water);
  s.write_buffer_cap = cfg.write_buffer_cap;
  return s;
}

caf::expected<connection>
await_connection(const std::function<void(connect_callback)>& start) {
  return detail::await_result<connection>(start, "connect");
}

} // namespace shardwire
