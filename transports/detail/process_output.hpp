// What a process child does with its child's output before it reaches the
// subscriber: the log files (process_spec::stdout_log / stderr_log) and the
// cut into lines (split_lines, max_line).
//
// Guarantees: every byte goes to its stream's log file (if any) before it
// is forwarded; lines are forwarded in order, each without its '\n', a line
// longer than max_line in max_line pieces; the read ticket of a chunk goes
// with the last line cut from it, so the pipe is read on once the
// subscriber handled every line before it; a failed log write is logged
// once per stream and stops nothing.
#pragma once

#include "actors/messages.hpp"
#include "transports/detail/rotating_log.hpp"
#include "transports/process_child.hpp"

#include <caf/error.hpp>

#include <functional>
#include <string>

namespace shardwire::detail {

class process_output {
public:
  /// Called for each piece to forward: stream fd, bytes, read ticket.
  using forward_fn = std::function<void(int32_t, buffer, read_ticket)>;

  /// Opens the log files `spec` names. Errors name the stream and path.
  caf::error open(const process_spec& spec);

  /// One chunk of output from the child's stream `msg.fd`.
  void on_data(pipe_data& msg, const forward_fn& forward);

  /// The stream ended: forwards its unfinished last line, if any.
  void on_end(int32_t fd, const forward_fn& forward);

private:
  const process_spec* spec_ = nullptr;
  std::string partial_[2]; // stdout, stderr
  rotating_log logs_[2];
  bool log_failed_[2] = {false, false};
};

} // namespace shardwire::detail
