// Two worker processes under a one_for_one supervisor: each is restarted
// with backoff when it dies, its output lines arrive as messages, and
// Ctrl-C stops both (SIGTERM to each process group, SIGKILL after 2 s).
#include "actors/config.hpp"
#include "actors/supervisor.hpp"
#include "runtime/runtime.hpp"
#include "transports/process_child.hpp"

#include <caf/scoped_actor.hpp>

#include <iostream>

using namespace shardwire;

int main(int argc, char** argv) {
  config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  // Prints what the workers write (one message per line).
  auto printer = rt.system().spawn([]() -> caf::behavior {
    return {[](const process_output& out) {
      std::cout << out.id << ": " << out.bytes.view() << std::endl;
    }};
  });
  supervisor_spec spec; // one_for_one, 3 restarts in 5 s, backoff from 100 ms
  for (auto id : {"ticker", "crasher"}) {
    process_spec ps;
    ps.id = id;
    ps.argv = {"/bin/sh", "-c",
               std::string{id} == "ticker"
                   ? "echo ready; while :; do date +%T; sleep 1; done"
                   : "echo ready; sleep 2; echo crashing; exit 1"};
    ps.ready_line = "ready"; // started = printed its ready line
    ps.subscriber = printer;
    ps.stop_timeout = std::chrono::seconds(2);
    spec.children.push_back(process_child_spec(rt, ps));
  }
  spec.intensity.max_restarts = 10; // the crasher crashes every 2 s
  spec.intensity.period = std::chrono::seconds(60);
  auto sup = spawn_supervisor(rt.system(), spec);
  if (!sup) return 1;
  runtime::wait_for_stop_signal(); // Ctrl-C
  caf::scoped_actor self{rt.system()};
  self->monitor(*sup);
  self->send_exit(*sup, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {}); // both workers are gone
  self->send_exit(printer, caf::exit_reason::user_shutdown);
}
