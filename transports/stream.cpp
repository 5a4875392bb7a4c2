#include "transports/stream.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"

#include <algorithm>
#include <future>
#include <memory>

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
  if (shard::current() != nullptr)
    return make_error(sw_errc::invalid_argument,
                      "blocking connect called on a shard thread; use the "
                      "async_ variant");
  auto result = std::make_shared<std::promise<caf::expected<connection>>>();
  auto fut = result->get_future();
  start([result](caf::expected<connection> x) {
    result->set_value(std::move(x));
  });
  try {
    return fut.get();
  } catch (const std::future_error&) {
    // The callback was destroyed without running: the runtime stopped.
    return make_error(sw_errc::shutdown, "runtime stopped during connect");
  }
}

} // namespace shardwire
