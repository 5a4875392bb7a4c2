#include "actors/messages.hpp"

#include "actors/errors.hpp"
#include "actors/supervision/messages.hpp"

#include <caf/actor_system_config.hpp>

namespace shardwire {

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<buffer>("shardwire::buffer")
      .add_message_type<endpoint>("shardwire::endpoint")
      .add_message_type<transport_info>("shardwire::transport_info")
      .add_message_type<connected>("shardwire::connected")
      .add_message_type<data>("shardwire::data")
      .add_message_type<eof>("shardwire::eof")
      .add_message_type<pause>("shardwire::pause")
      .add_message_type<resume>("shardwire::resume")
      .add_message_type<lost>("shardwire::lost")
      .add_message_type<write>("shardwire::write")
      .add_message_type<writelines>("shardwire::writelines")
      .add_message_type<write_eof>("shardwire::write_eof")
      .add_message_type<close>("shardwire::close")
      .add_message_type<abort>("shardwire::abort")
      .add_message_type<pause_reading>("shardwire::pause_reading")
      .add_message_type<resume_reading>("shardwire::resume_reading")
      .add_message_type<set_write_buffer_limits>(
          "shardwire::set_write_buffer_limits")
      .add_message_type<write_buffer_limits>("shardwire::write_buffer_limits")
      .add_message_type<get_write_buffer_size>(
          "shardwire::get_write_buffer_size")
      .add_message_type<get_write_buffer_limits>(
          "shardwire::get_write_buffer_limits")
      .add_message_type<get_extra_info>("shardwire::get_extra_info")
      .add_message_type<get_status>("shardwire::get_status")
      .add_message_type<transport_status>("shardwire::transport_status")
      .add_message_type<set_protocol>("shardwire::set_protocol")
      .add_message_type<get_protocol>("shardwire::get_protocol")
      .add_message_type<lend_buffer>("shardwire::lend_buffer")
      .add_message_type<buffer_filled>("shardwire::buffer_filled")
      .add_message_type<send_file>("shardwire::send_file")
      .add_message_type<buffered_protocol_actor>(
          "shardwire::buffered_protocol_actor")
      .add_message_type<read_credit_returned>("shardwire::read_credit_returned")
      .add_message_type<get_sockets>("shardwire::get_sockets")
      .add_message_type<start_serving>("shardwire::start_serving")
      .add_message_type<stop_serving>("shardwire::stop_serving")
      .add_message_type<is_serving>("shardwire::is_serving")
      .add_message_type<close_clients>("shardwire::close_clients")
      .add_message_type<abort_clients>("shardwire::abort_clients")
      .add_message_type<server_actor>("shardwire::server_actor")
      .add_message_type<protocol_actor>("shardwire::protocol_actor")
      .add_message_type<transport_actor>("shardwire::transport_actor")
      .add_message_type<datagram_connected>("shardwire::datagram_connected")
      .add_message_type<datagram>("shardwire::datagram")
      .add_message_type<datagram_error>("shardwire::datagram_error")
      .add_message_type<sendto>("shardwire::sendto")
      .add_message_type<set_datagram_protocol>(
          "shardwire::set_datagram_protocol")
      .add_message_type<datagram_protocol_actor>(
          "shardwire::datagram_protocol_actor")
      .add_message_type<datagram_transport_actor>(
          "shardwire::datagram_transport_actor")
      .add_message_type<process_info>("shardwire::process_info")
      .add_message_type<subprocess_connected>("shardwire::subprocess_connected")
      .add_message_type<pipe_data>("shardwire::pipe_data")
      .add_message_type<pipe_lost>("shardwire::pipe_lost")
      .add_message_type<exited>("shardwire::exited")
      .add_message_type<signal>("shardwire::signal")
      .add_message_type<terminate>("shardwire::terminate")
      .add_message_type<kill>("shardwire::kill")
      .add_message_type<get_pid>("shardwire::get_pid")
      .add_message_type<get_returncode>("shardwire::get_returncode")
      .add_message_type<get_pipe_transport>("shardwire::get_pipe_transport")
      .add_message_type<set_subprocess_protocol>(
          "shardwire::set_subprocess_protocol")
      .add_message_type<process_output>("shardwire::process_output")
      .add_message_type<process_status>("shardwire::process_status")
      .add_message_type<caf::optional<int32_t>>("caf::optional<int32_t>")
      .add_message_type<subprocess_protocol_actor>(
          "shardwire::subprocess_protocol_actor")
      .add_message_type<subprocess_transport_actor>(
          "shardwire::subprocess_transport_actor")
      .add_message_type<start_tls>("shardwire::start_tls")
      .add_message_type<start_tls_data>("shardwire::start_tls_data")
      .add_message_type<tls_started>("shardwire::tls_started");
  register_error_categories(cfg);
  register_supervision_types(cfg);
}

} // namespace shardwire
