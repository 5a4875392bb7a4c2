// "host:port" addresses as people type them on a command line or in a
// Toxiproxy JSON body: one parser for every option and API that takes one
// (--metrics, chaos_proxy's --listen/--upstream/--api, the Toxiproxy API).
//
// Pure values and functions: no threads, no resolving.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shardwire {

/// An address as written: the host is a name or a literal, unresolved.
struct host_port {
  std::string host;
  uint16_t port = 0;

  friend bool operator==(const host_port&, const host_port&) = default;
};

/// Splits "host:port", "[v6]:port" or ":port" (empty host, as Go allows;
/// callers that need a host check it). Nothing if the port is missing, not
/// a decimal number or above 65535, or an IPv6 host lacks its brackets.
std::optional<host_port> parse_host_port(std::string_view s);

/// "host:port", with brackets around a host containing ':'.
std::string to_string(const host_port& x);

} // namespace shardwire
