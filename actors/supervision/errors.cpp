#include "actors/supervision/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace shardwire {

std::string to_string(supervisor_errc x) {
  switch (x) {
  case supervisor_errc::max_restarts_exceeded:
    return "max_restarts_exceeded";
  case supervisor_errc::start_failed:
    return "start_failed";
  case supervisor_errc::ready_timeout:
    return "ready_timeout";
  case supervisor_errc::no_such_child:
    return "no_such_child";
  case supervisor_errc::wrong_strategy:
    return "wrong_strategy";
  case supervisor_errc::shutting_down:
    return "shutting_down";
  case supervisor_errc::invalid_spec:
    return "invalid_spec";
  }
  return "unknown";
}

caf::error make_error(supervisor_errc x, std::string context) {
  if (context.empty())
    return caf::error{static_cast<uint8_t>(x), supervisor_category};
  return caf::error{static_cast<uint8_t>(x), supervisor_category,
                    caf::make_message(std::move(context))};
}

bool is(const caf::error& x, supervisor_errc code) noexcept {
  return x && x.category() == supervisor_category &&
         x.code() == static_cast<uint8_t>(code);
}

} // namespace shardwire
