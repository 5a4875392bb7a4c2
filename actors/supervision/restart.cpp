#include "actors/supervision/restart.hpp"

#include <caf/exit_reason.hpp>

namespace shardwire {

std::string to_string(restart_type x) {
  switch (x) {
  case restart_type::permanent:
    return "permanent";
  case restart_type::transient:
    return "transient";
  case restart_type::temporary:
    return "temporary";
  }
  return "unknown";
}

bool is_normal_exit(const caf::error& reason) noexcept {
  // CAF 0.17's error::category() dereferences null on an empty error.
  if (!reason) return true;
  // Compared with CAF's own errors rather than a hard-coded category atom.
  static const caf::error user_shutdown{caf::exit_reason::user_shutdown};
  if (reason.category() != user_shutdown.category()) return false;
  return reason.code() == static_cast<uint8_t>(caf::exit_reason::normal) ||
         reason.code() == user_shutdown.code();
}

bool should_restart(restart_type type, const caf::error& reason) noexcept {
  switch (type) {
  case restart_type::permanent:
    return true;
  case restart_type::transient:
    return !is_normal_exit(reason);
  case restart_type::temporary:
    return false;
  }
  return false;
}

} // namespace shardwire
