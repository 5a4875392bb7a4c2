// asyncio's write-buffer limit rules, shared by stream and datagram
// transports. Part of the transport core.
#pragma once

#include "actors/errors.hpp"
#include "actors/messages.hpp"

#include <caf/expected.hpp>

#include <string>

namespace shardwire::transport_core {

/// Defaults: 64 KiB high, 16 KiB low (asyncio's).
inline constexpr uint64_t default_high_water = 64 * 1024;
inline constexpr uint64_t default_low_water = 16 * 1024;

/// asyncio's SSL transports (sslproto): their own defaults, and `pause`
/// once the buffer reaches high (not only above it).
inline constexpr uint64_t tls_default_high_water = 512 * 1024;
inline constexpr uint64_t tls_default_low_water = 128 * 1024;

/// Only `high` -> low = high/4; only `low` -> high = 4*low; neither -> the
/// defaults; high < low -> invalid_argument.
inline caf::expected<write_buffer_limits>
resolve_write_limits(const set_write_buffer_limits& msg) {
  uint64_t high = default_high_water;
  uint64_t low = default_low_water;
  if (msg.high && msg.low) {
    high = *msg.high;
    low = *msg.low;
  } else if (msg.high) {
    high = *msg.high;
    low = high / 4;
  } else if (msg.low) {
    low = *msg.low;
    high = 4 * low;
  }
  if (high < low)
    return make_error(sw_errc::invalid_argument,
                      "high (" + std::to_string(high) + ") must be >= low (" +
                          std::to_string(low) + ")");
  return write_buffer_limits{low, high};
}

} // namespace shardwire::transport_core
