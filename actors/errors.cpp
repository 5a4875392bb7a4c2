#include "actors/errors.hpp"

#include "actors/supervision/errors.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include <cstring>

namespace shardwire {

std::string to_string(sw_errc x) {
  switch (x) {
  case sw_errc::write_after_eof:
    return "write_after_eof";
  case sw_errc::protocol_failed:
    return "protocol_failed";
  case sw_errc::unknown_host:
    return "unknown_host";
  case sw_errc::timeout:
    return "timeout";
  case sw_errc::invalid_argument:
    return "invalid_argument";
  case sw_errc::shutdown:
    return "shutdown";
  case sw_errc::closed:
    return "closed";
  case sw_errc::factory_failed:
    return "factory_failed";
  case sw_errc::not_supported:
    return "not_supported";
  case sw_errc::process_exited:
    return "process_exited";
  case sw_errc::process_failed:
    return "process_failed";
  case sw_errc::node_unavailable:
    return "node_unavailable";
  case sw_errc::incompatible_node:
    return "incompatible_node";
  case sw_errc::unknown_service:
    return "unknown_service";
  case sw_errc::write_buffer_overflow:
    return "write_buffer_overflow";
  case sw_errc::watchdog_timeout:
    return "watchdog_timeout";
  case sw_errc::liveness_failed:
    return "liveness_failed";
  case sw_errc::oom_killed:
    return "oom_killed";
  }
  return "unknown";
}

std::string to_string(tls_errc x) {
  switch (x) {
  case tls_errc::handshake_failed:
    return "handshake_failed";
  case tls_errc::unknown_ca:
    return "unknown_ca";
  case tls_errc::hostname_mismatch:
    return "hostname_mismatch";
  case tls_errc::certificate_expired:
    return "certificate_expired";
  case tls_errc::certificate_rejected:
    return "certificate_rejected";
  case tls_errc::not_tls:
    return "not_tls";
  case tls_errc::closed_in_handshake:
    return "closed_in_handshake";
  case tls_errc::handshake_timeout:
    return "handshake_timeout";
  case tls_errc::truncated:
    return "truncated";
  case tls_errc::renegotiation_refused:
    return "renegotiation_refused";
  case tls_errc::protocol_error:
    return "protocol_error";
  case tls_errc::bad_config:
    return "bad_config";
  }
  return "unknown";
}

caf::error make_error(tls_errc x, std::string context) {
  if (context.empty()) return caf::error{static_cast<uint8_t>(x), tls_category};
  return caf::error{static_cast<uint8_t>(x), tls_category,
                    caf::make_message(std::move(context))};
}

bool is(const caf::error& x, tls_errc code) noexcept {
  return x && x.category() == tls_category &&
         x.code() == static_cast<uint8_t>(code);
}

caf::error make_error(sw_errc x, std::string context) {
  if (context.empty()) return caf::error{static_cast<uint8_t>(x), sw_category};
  return caf::error{static_cast<uint8_t>(x), sw_category,
                    caf::make_message(std::move(context))};
}

caf::error make_errno_error(int err, std::string context) {
  if (context.empty())
    return caf::error{static_cast<uint8_t>(err), errno_category};
  return caf::error{static_cast<uint8_t>(err), errno_category,
                    caf::make_message(std::move(context))};
}

// CAF 0.17's error::category() dereferences null on an empty error, so
// both predicates check for "no error" first.
bool is_errno(const caf::error& x, int err) noexcept {
  return x && x.category() == errno_category && x.code() == err;
}

bool is(const caf::error& x, sw_errc code) noexcept {
  return x && x.category() == sw_category &&
         x.code() == static_cast<uint8_t>(code);
}

namespace {

std::string context_string(const caf::message& ctx) {
  if (ctx.empty()) return {};
  if (ctx.match_elements<std::string>()) return ctx.get_as<std::string>(0);
  return caf::to_string(ctx);
}

std::string render(uint8_t code, caf::atom_value cat, const caf::message& ctx) {
  std::string out;
  if (cat == errno_category) {
    out = "errno: ";
    out += std::strerror(code);
  } else if (cat == sw_category) {
    out = "shardwire: ";
    out += to_string(static_cast<sw_errc>(code));
  } else if (cat == tls_category) {
    out = "tls: ";
    out += to_string(static_cast<tls_errc>(code));
  } else if (cat == supervisor_category) {
    out = "supervisor: ";
    out += to_string(static_cast<supervisor_errc>(code));
  } else if (cat == caf::error{caf::exit_reason::kill}.category()) {
    out = "exit: ";
    out += caf::to_string(static_cast<caf::exit_reason>(code));
  } else if (cat == caf::atom("system")) {
    out = "system: ";
    out += caf::to_string(static_cast<caf::sec>(code));
  } else {
    out = caf::to_string(cat);
    out += ": ";
    out += std::to_string(code);
  }
  auto extra = context_string(ctx);
  if (!extra.empty()) {
    out += " (";
    out += extra;
    out += ")";
  }
  return out;
}

} // namespace

std::string describe(const caf::error& x) {
  if (!x) return "none";
  return render(x.code(), x.category(), x.context());
}

void register_error_categories(caf::actor_system_config& cfg) {
  cfg.add_error_category(errno_category, render);
  cfg.add_error_category(sw_category, render);
  cfg.add_error_category(tls_category, render);
  cfg.add_error_category(supervisor_category, render);
}

} // namespace shardwire
