#include "actors/supervision/messages.hpp"

#include <caf/actor_system_config.hpp>

namespace shardwire {

std::string to_string(child_state x) {
  switch (x) {
  case child_state::stopped:
    return "stopped";
  case child_state::starting:
    return "starting";
  case child_state::running:
    return "running";
  case child_state::stopping:
    return "stopping";
  case child_state::restarting:
    return "restarting";
  }
  return "unknown";
}

void register_supervision_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<child_ready>("shardwire::child_ready")
      .add_message_type<child_extend_timeout>("shardwire::child_extend_timeout")
      .add_message_type<start_child>("shardwire::start_child")
      .add_message_type<terminate_child>("shardwire::terminate_child")
      .add_message_type<restart_child>("shardwire::restart_child")
      .add_message_type<which_children>("shardwire::which_children")
      .add_message_type<count_children>("shardwire::count_children")
      .add_message_type<await_started>("shardwire::await_started")
      .add_message_type<child_info>("shardwire::child_info")
      .add_message_type<std::vector<child_info>>(
          "std::vector<shardwire::child_info>")
      .add_message_type<child_counts>("shardwire::child_counts")
      .add_message_type<child_started>("shardwire::child_started")
      .add_message_type<child_start_failed>("shardwire::child_start_failed")
      .add_message_type<child_exited>("shardwire::child_exited")
      .add_message_type<child_restarting>("shardwire::child_restarting")
      .add_message_type<supervisor_started>("shardwire::supervisor_started")
      .add_message_type<escalated>("shardwire::escalated");
}

} // namespace shardwire
