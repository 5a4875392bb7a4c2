#include "transports/detail/liveness_probe.hpp"

#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/process_child.hpp"
#include "transports/subprocess.hpp"
#include "transports/tcp.hpp"

#include <csignal>
#include <memory>

namespace shardwire::detail {

namespace {

using done_fn = std::function<void(bool, std::string)>;

// Calls `done` at most once, from whichever path finishes first.
struct once {
  done_fn done;
  bool called = false;
  void operator()(bool passed, std::string what) {
    if (called) return;
    called = true;
    done(passed, std::move(what));
  }
};

// Closes the connection as soon as it is made: connecting was the probe.
class closer : public protocol {
public:
  void connection_made(transport_ref& t) override { t.close(); }
};

// The probe command's protocol: its exit status decides.
subprocess_protocol_actor::behavior_type
probe_command(subprocess_protocol_actor::pointer self,
              std::shared_ptr<once> report, std::string what,
              std::chrono::milliseconds timeout) {
  auto status = std::make_shared<int32_t>(-1);
  return {
      [](subprocess_connected&) {},
      [](pipe_data&) {},
      [](pipe_lost&) {},
      [status](exited& msg) { *status = msg.status; },
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [=](lost&) {
        if (*status == 0) (*report)(true, what);
        // `timeout -s KILL` fired: it exits 137, or is killed with the
        // command when it signals its whole process group.
        else if (*status == 128 + SIGKILL || *status == -SIGKILL)
          (*report)(false, what + " timed out after " +
                               std::to_string(timeout.count()) + " ms");
        else
          (*report)(false, what + " exited " + std::to_string(*status));
        self->quit();
      },
  };
}

std::string seconds(std::chrono::milliseconds ms) {
  auto s = std::to_string(ms.count() / 1000) + "." +
           std::to_string(ms.count() % 1000 + 1000).substr(1);
  return s;
}

} // namespace

std::optional<std::string> probe_problem(const liveness_probe& p) {
  if (p.command.has_value() == p.tcp_port.has_value())
    return "liveness: set exactly one of command and tcp_port";
  if (p.command && p.command->empty()) return "liveness: empty command";
  if (p.interval.count() <= 0) return "liveness: interval must be positive";
  if (p.timeout.count() <= 0) return "liveness: timeout must be positive";
  if (p.failure_threshold == 0)
    return "liveness: failure_threshold must be at least 1";
  return std::nullopt;
}

void run_probe(runtime& rt, shard& home, const liveness_probe& p,
               done_fn done) {
  auto report = std::make_shared<once>();
  report->done = std::move(done);
  if (p.command) {
    std::string what = "command `" + *p.command + "`";
    subprocess_options opts;
    opts.stdin_ = stdio::devnull;
    opts.stdout_ = stdio::devnull;
    opts.stderr_ = stdio::devnull;
    opts.kill_group_on_exit = true; // nothing the probe started outlives it
    opts.shard = home.id();
    async_subprocess_exec(
        rt,
        {"timeout", "-s", "KILL", seconds(p.timeout), "/bin/sh", "-c",
         *p.command},
        subprocess_protocol_fun(probe_command, report, what, p.timeout), opts,
        [report, what](caf::expected<subprocess> sp) {
          if (!sp) (*report)(false, what + ": " + describe(sp.error()));
        });
    return;
  }
  std::string what = "tcp " + p.tcp_host + ":" + std::to_string(*p.tcp_port);
  connect_options opts;
  opts.host = p.tcp_host;
  opts.port = *p.tcp_port;
  opts.timeout = p.timeout;
  opts.shard = home.id();
  async_create_connection(rt, opts, make_protocol<closer>(),
                          [report, what](caf::expected<connection> conn) {
                            if (conn)
                              (*report)(true, what);
                            else
                              (*report)(false,
                                        what + ": " + describe(conn.error()));
                          });
}

} // namespace shardwire::detail
