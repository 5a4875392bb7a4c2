#include "actors/extra_info.hpp"

namespace shardwire {

namespace {

bool is_pipe(const std::string& kind) {
  return kind == "read_pipe" || kind == "write_pipe";
}

// An endpoint that was never set (family none) is asyncio's None.
extra_value address(const endpoint& ep, extra_value& fallback) {
  if (!ep.valid()) return std::move(fallback);
  return ep;
}

} // namespace

extra_value extra_info(const transport_info& info, std::string_view name,
                           extra_value fallback) {
  if (name == "peername") return address(info.peername, fallback);
  if (name == "sockname") return address(info.sockname, fallback);
  if (name == "kind") return info.kind;
  if (name == "shard") return static_cast<int64_t>(info.shard);
  if (name == "socket" || name == "pipe") {
    // Each name only where asyncio has it: "socket" on socket transports,
    // "pipe" on pipe transports.
    if (info.fd < 0 || (name == "pipe") != is_pipe(info.kind))
      return fallback;
    return static_cast<int64_t>(info.fd);
  }
  for (auto& [key, value] : info.named)
    if (key == name) return value;
  return fallback;
}

extra_value extra_info(const process_info& info, std::string_view name,
                           extra_value fallback) {
  if (name == "subprocess" || name == "pid")
    return static_cast<int64_t>(info.pid);
  if (name == "pgid") return static_cast<int64_t>(info.pgid);
  if (name == "shard") return static_cast<int64_t>(info.shard);
  if (name == "args") {
    std::string joined;
    for (auto& a : info.args) {
      if (!joined.empty()) joined += ' ';
      joined += a;
    }
    return joined;
  }
  return fallback;
}

} // namespace shardwire
