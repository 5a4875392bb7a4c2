#include "actors/endpoint.hpp"

namespace shardwire {

std::string to_string(const endpoint& x) {
  switch (x.family) {
  case endpoint::kind::ipv4:
    return x.host + ":" + std::to_string(x.port);
  case endpoint::kind::ipv6:
    return "[" + x.host + "]:" + std::to_string(x.port);
  case endpoint::kind::unix_path:
    return x.path.empty() ? std::string{"<unnamed>"} : x.path;
  default:
    return "none";
  }
}

std::string python_repr(const endpoint& x) {
  switch (x.family) {
  case endpoint::kind::ipv4:
    return "('" + x.host + "', " + std::to_string(x.port) + ")";
  case endpoint::kind::ipv6:
    return "('" + x.host + "', " + std::to_string(x.port) + ", 0, 0)";
  case endpoint::kind::unix_path:
    return "'" + x.path + "'";
  default:
    return "None";
  }
}

} // namespace shardwire
