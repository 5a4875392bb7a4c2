// The asyncio documentation's "connecting existing sockets" example: one end
// of a socketpair becomes a transport, the other end sends "abc".
//
//   socketpair_echo
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/socket.hpp"

#include <future>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;

namespace {

using done_promise = std::shared_ptr<std::promise<void>>;

class my_protocol : public protocol {
public:
  explicit my_protocol(done_promise done) : done_(std::move(done)) {}

  void data_received(const buffer& bytes) override {
    demo::println("Received: ", bytes.view());
    transport().close();
  }

  void connection_lost(const caf::error&) override { done_->set_value(); }

private:
  done_promise done_;
};

} // namespace

int main(int argc, char** argv) {
  config cfg;
  cfg.shards = 1;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    std::perror("socketpair");
    return 1;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  auto conn =
      connect_accepted_socket(rt, fds[0], make_protocol<my_protocol>(done));
  if (!conn) {
    demo::eprintln("error: ", describe(conn.error()));
    return 1;
  }
  // Simulate the reception of data from the network.
  if (::send(fds[1], "abc", 3, 0) != 3) {
    std::perror("send");
    return 1;
  }
  finished.wait();
  ::close(fds[1]);
  return 0;
}
