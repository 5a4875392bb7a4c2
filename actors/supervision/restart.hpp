// Restart types and the restart decision (OTP's rules), as pure functions.
#pragma once

#include <caf/error.hpp>

#include <cstdint>
#include <string>

namespace shardwire {

/// When a child that exited is restarted.
enum class restart_type : uint8_t {
  /// Always, whatever the exit reason.
  permanent,
  /// Only after an abnormal exit (see `is_normal_exit`).
  transient,
  /// Never; the child is forgotten once it exits.
  temporary,
};

std::string to_string(restart_type x);

/// True for the exit reasons OTP calls normal: no error (CAF's
/// `exit_reason::normal` is the empty error) and `exit_reason::user_shutdown`
/// (OTP's `shutdown`). Everything else is abnormal, including
/// `exit_reason::kill`, `exit_reason::unreachable`, `unhandled_exception` and
/// every error of another category (a process child's non-zero exit status).
bool is_normal_exit(const caf::error& reason) noexcept;

/// OTP's decision: permanent always, transient only after an abnormal exit,
/// temporary never.
bool should_restart(restart_type type, const caf::error& reason) noexcept;

} // namespace shardwire
