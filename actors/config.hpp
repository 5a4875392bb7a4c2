// The configuration class programs use: runtime options plus every
// shardwire message type and error category registered with CAF.
#pragma once

#include "runtime/config.hpp"

namespace shardwire {

class config : public runtime_config {
public:
  config();
};

} // namespace shardwire
