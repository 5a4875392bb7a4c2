#include "actors/config.hpp"

#include "actors/messages.hpp"

namespace shardwire {

config::config() {
  register_types(*this);
}

} // namespace shardwire
