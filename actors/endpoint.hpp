// Socket addresses as plain values (no Asio types in actors/).
#pragma once

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>

namespace shardwire {

/// An address: IPv4/IPv6 host and port, or a Unix socket path.
struct endpoint {
  enum class kind : uint8_t { none, ipv4, ipv6, unix_path };

  kind family = kind::none;
  /// Numeric host for IP families ("127.0.0.1", "::1").
  std::string host;
  uint16_t port = 0;
  /// Filesystem path (or "@name" for the abstract namespace) for Unix.
  std::string path;

  bool valid() const noexcept { return family != kind::none; }

  friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// "127.0.0.1:8888", "[::1]:8888", "/tmp/sock", or "none".
std::string to_string(const endpoint& x);

/// The address as Python's socket module prints it: ('127.0.0.1', 8888),
/// ('::1', 8888, 0, 0), '/tmp/sock' (used by the asyncio-compatible demos).
std::string python_repr(const endpoint& x);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, endpoint& x) {
  auto fam = static_cast<uint8_t>(x.family);
  if constexpr (Inspector::reads_state) {
    return f(caf::meta::type_name("endpoint"), fam, x.host, x.port, x.path);
  } else {
    auto res = f(caf::meta::type_name("endpoint"), fam, x.host, x.port, x.path);
    x.family = static_cast<endpoint::kind>(fam);
    return res;
  }
}

} // namespace shardwire
