// Metrics (runtime/metrics.hpp): real loopback traffic moves the per-shard
// counters by exact amounts, supervisors count restarts, the exposition
// text is valid (promtool, where installed), and the stall detector reports
// a stuck handler once, with its actor and a backtrace.
#include "runtime/metrics.hpp"

#include "actors/supervisor.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/support/wait_down.hpp"
#include "transports/socket.hpp"
#include "transports/tcp.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

/// The sum over every shard of one counter.
uint64_t total(const runtime& rt, const single_writer_value shard_metrics::*v) {
  uint64_t n = 0;
  for (size_t i = 0; i < rt.shard_count(); ++i)
    n += (rt.shard_at(i).metrics().*v).value();
  return n;
}

/// Waits until the transport handled every message sent to it before: its
/// reply to a request comes after them (and carries their counts with it).
void sync_with(runtime& rt, const transport_actor& t) {
  REQUIRE(ask<uint64_t>(rt, t, get_write_buffer_size{}));
}

struct counters {
  uint64_t accepted, open, in, out, read_pauses, write_pauses;
};

counters read_counters(const runtime& rt) {
  return {total(rt, &shard_metrics::accepted),
          total(rt, &shard_metrics::open_connections),
          total(rt, &shard_metrics::bytes_in),
          total(rt, &shard_metrics::bytes_out),
          total(rt, &shard_metrics::read_pauses),
          total(rt, &shard_metrics::write_pauses)};
}

/// Result of `promtool check metrics` on `text`: exit status and output.
/// Nothing when promtool is not installed.
std::optional<std::pair<int, std::string>>
promtool_check(const std::string& text) {
  if (::access("/usr/bin/promtool", X_OK) != 0) return std::nullopt;
  char path[] = "/tmp/shardwire_metrics_XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) ==
          static_cast<ssize_t>(text.size()));
  ::close(fd);
  auto cmd = std::string{"/usr/bin/promtool check metrics < "} + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  int status = ::pclose(p);
  ::unlink(path);
  return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
}

/// A request with several arguments from a scoped actor (deadline bounded).
template <class Result, class Handle, class... Ts>
caf::expected<Result> call(runtime& rt, const Handle& hdl, Ts... xs) {
  caf::scoped_actor self{rt.system()};
  caf::expected<Result> result{caf::error{}};
  self->request(hdl, std::chrono::seconds(10), xs...)
      .receive([&](Result& x) { result = std::move(x); },
               [&](caf::error& err) { result = std::move(err); });
  return result;
}

// -- actors for deliveries and stalls -------------------------------------

using spin_atom = caf::atom_constant<caf::atom("spin")>;
using relay_atom = caf::atom_constant<caf::atom("relay")>;

/// Replies to `spin{ms}` after busy-looping that long on its shard (a
/// handler that blocks its shard, on purpose).
class spinner : public pinned<caf::event_based_actor> {
public:
  using pinned::pinned;

  const char* name() const override { return "test_spinner"; }

  caf::behavior make_behavior() override {
    return {[](spin_atom, int ms) {
      auto until =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      while (std::chrono::steady_clock::now() < until) {
      }
      return ms;
    }};
  }
};

/// `relay` is passed to `next` (a co-located actor), which answers the
/// original sender.
caf::behavior relay(caf::event_based_actor* self, caf::actor next) {
  return {[self, next](relay_atom, int x) {
    return self->delegate(next, relay_atom::value, x);
  }};
}

caf::behavior answer(caf::event_based_actor*) {
  return {[](relay_atom, int x) { return x + 1; }};
}

} // namespace

// -- per-shard counters ------------------------------------------------------

TEST_CASE("loopback echo moves accepted, open and byte counters exactly") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  auto log = std::make_shared<event_log>();
  auto transport = std::make_shared<transport_actor>();
  recorder_options ro;
  ro.echo = true;
  auto srv = create_server(rt, recorder(log, ro, transport), server_options{});
  REQUIRE(srv);
  auto before = read_counters(rt);
  CHECK(before.accepted == 0);
  CHECK(before.open == 0);

  int c = raw_connect(srv->sockets.front().port);
  REQUIRE(c >= 0);
  REQUIRE(log->wait_for_event("connected"));
  const std::string msg = "hello, metrics";
  REQUIRE(raw_send_all(c, msg));
  CHECK(raw_read_exact(c, msg.size()) == msg);
  sync_with(rt, *transport);
  auto during = read_counters(rt);
  CHECK(during.accepted == 1);
  CHECK(during.open == 1);
  CHECK(during.in == msg.size());
  CHECK(during.out == msg.size());

  raw_close(c);
  REQUIRE(log->wait_for_event("lost", true));
  auto after = read_counters(rt);
  CHECK(after.open == 0);
  CHECK(after.accepted == 1);
  CHECK(after.in == msg.size());
  CHECK(after.out == msg.size());
  caf::anon_send(srv->actor, shardwire::close{});
}

TEST_CASE("a peer that does not read makes one write pause") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(rt, sv[0], recorder(log));
  REQUIRE(conn);
  CHECK(total(rt, &shard_metrics::write_pauses) == 0);
  // Far more than the socket buffer plus the 64 KiB high-water mark.
  caf::anon_send(conn->transport,
                 shardwire::write{buffer::copy_of(std::string(4 << 20, 'x'))});
  REQUIRE(log->wait_for_event("pause"));
  sync_with(rt, conn->transport);
  CHECK(total(rt, &shard_metrics::write_pauses) == 1);
  // Bytes out counts what the kernel took, not what was queued.
  auto out = total(rt, &shard_metrics::bytes_out);
  CHECK(out > 0);
  CHECK(out < (4u << 20));
  caf::anon_send(conn->transport, shardwire::abort{});
  REQUIRE(log->wait_for_event("lost", true));
  raw_close(sv[1]);
}

TEST_CASE("pause_reading counts one read pause, a repeated one none") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(rt, sv[0], recorder(log));
  REQUIRE(conn);
  sync_with(rt, conn->transport);
  CHECK(total(rt, &shard_metrics::read_pauses) == 0);
  caf::anon_send(conn->transport, pause_reading{});
  caf::anon_send(conn->transport, pause_reading{});
  sync_with(rt, conn->transport);
  CHECK(total(rt, &shard_metrics::read_pauses) == 1);
  caf::anon_send(conn->transport, resume_reading{});
  caf::anon_send(conn->transport, pause_reading{});
  sync_with(rt, conn->transport);
  CHECK(total(rt, &shard_metrics::read_pauses) == 2);
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost", true));
  raw_close(sv[1]);
}

TEST_CASE("a co-located delivery takes the fast path unless it is off") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  auto& s = rt.shard_at(0);
  auto last = spawn_fun_on(s, answer);
  auto first = spawn_fun_on(s, relay, caf::actor{last});
  auto& m = s.metrics();
  auto fast0 = m.fast_deliveries.value();
  auto queued0 = m.queued_deliveries.value();
  auto r = call<int>(rt, first, relay_atom::value, 41);
  REQUIRE(r);
  CHECK(*r == 42);
  // The request from the test thread is queued at `first`; its delegation
  // to `last`, sent on the shard's thread to an idle actor, is delivered
  // at once when the fast path is on.
  if (fx.cfg.fast_path) {
    CHECK(m.fast_deliveries.value() - fast0 == 1);
    CHECK(m.queued_deliveries.value() - queued0 == 1);
  } else {
    CHECK(m.fast_deliveries.value() - fast0 == 0);
    CHECK(m.queued_deliveries.value() - queued0 == 2);
  }
  // The depth gauge is written when a turn ends, after its answer left:
  // wait until the shard ran past that turn.
  std::promise<void> past;
  s.post([&] { past.set_value(); });
  past.get_future().wait();
  CHECK(m.max_mailbox_depth.value() >= 1);
  caf::anon_send_exit(first, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(last, caf::exit_reason::user_shutdown);
}

TEST_CASE("the mailbox depth gauge sees a backlog behind a busy actor") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  auto hdl = spawn_on<spinner>(rt.shard_at(0));
  caf::scoped_actor self{rt.system()};
  // The first message keeps the actor busy while the rest queue up; it
  // then handles max-throughput (64) of them in a turn and leaves the rest.
  self->send(hdl, spin_atom::value, 20);
  for (int i = 0; i < 200; ++i)
    self->send(hdl, spin_atom::value, 0);
  for (int i = 0; i < 201; ++i)
    self->receive([](int) {}, caf::after(deadline) >> [] { FAIL("no reply"); });
  REQUIRE(call<int>(rt, hdl, spin_atom::value, 0));
  // A turn handles at most max-throughput messages: the gauge shows the
  // backlog up to that bound.
  auto depth = rt.shard_at(0).metrics().max_mailbox_depth.value();
  if (fx.cfg.metrics_collect) CHECK(depth == fx.cfg.max_throughput);
  caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
}

TEST_CASE("with collection off the data path counts nothing") {
  runtime_fixture fx(2, [](test_config& cfg) { cfg.metrics_collect = false; });
  auto& rt = *fx.rt;
  auto log = std::make_shared<event_log>();
  auto transport = std::make_shared<transport_actor>();
  recorder_options ro;
  ro.echo = true;
  auto srv = create_server(rt, recorder(log, ro, transport), server_options{});
  REQUIRE(srv);
  int c = raw_connect(srv->sockets.front().port);
  REQUIRE(c >= 0);
  REQUIRE(raw_send_all(c, "abc"));
  CHECK(raw_read_exact(c, 3) == "abc");
  sync_with(rt, *transport);
  auto n = read_counters(rt);
  CHECK(n.accepted == 0);
  CHECK(n.in == 0);
  CHECK(n.out == 0);
  CHECK(total(rt, &shard_metrics::queued_deliveries) == 0);
  CHECK(total(rt, &shard_metrics::poller_wakeups) == 0);
  raw_close(c);
  REQUIRE(log->wait_for_event("lost", true));
  caf::anon_send(srv->actor, shardwire::close{});
}

// -- process-wide registry -------------------------------------------------

TEST_CASE("a supervisor counts a restart and the exit's cause") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  // The value of a series of the global registry, 0 before it exists.
  auto value = [](const char* family, const metric_labels& labels) {
    auto* f = metrics_registry::global().find(family);
    return f != nullptr ? f->counter(labels).value() : 0;
  };
  auto restarts0 = value("shardwire_supervisor_restarts_total", {});
  auto killed0 =
      value("shardwire_supervisor_child_exits_total", {{"cause", "killed"}});

  auto log = std::make_shared<event_log>();
  auto first = std::make_shared<std::promise<caf::actor>>();
  auto starts = std::make_shared<std::atomic<int>>(0);
  supervisor_spec spec;
  spec.backoff = backoff_policy::none();
  spec.children.push_back(child_spec{
      "worker",
      [log, first, starts](child_context& ctx) -> caf::expected<caf::actor> {
        auto a = ctx.system.spawn(
            []() -> caf::behavior { return {[](int x) { return x; }}; });
        if (starts->fetch_add(1) == 0) first->set_value(a);
        log->add("started");
        return a;
      }});
  auto sup = spawn_supervisor(rt.system(), std::move(spec));
  REQUIRE(sup);
  auto child = first->get_future().get();
  caf::anon_send_exit(child, caf::exit_reason::kill);
  REQUIRE(log->wait_for(
      [](const std::vector<std::string>& evs) { return evs.size() >= 2; }));
  CHECK(value("shardwire_supervisor_restarts_total", {}) - restarts0 == 1);
  CHECK(value("shardwire_supervisor_child_exits_total", {{"cause", "killed"}}) -
            killed0 ==
        1);

  caf::scoped_actor self{rt.system()};
  self->monitor(*sup);
  self->send_exit(*sup, caf::exit_reason::user_shutdown);
  CHECK(wait_down(self, *sup) == caf::exit_reason::user_shutdown);
}

TEST_CASE("label values are escaped; a family renders once with its series") {
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  metrics_registry reg;
  auto& fam = reg.family("test_things_total", "Things.\nMore help \\ here.",
                         metric_type::counter);
  fam.counter({{"name", "quo\"te"}}).add(3);
  fam.counter({{"name", "back\\slash\nnewline"}}).add();
  CHECK(&reg.family("test_things_total", "", metric_type::counter) == &fam);
  CHECK_THROWS(reg.family("test_things_total", "", metric_type::gauge));
  CHECK_THROWS(reg.family("bad name", "", metric_type::gauge));
  CHECK_THROWS(reg.family("shardwire_stalls_total", "", metric_type::counter));
  CHECK_THROWS(fam.counter({{"bad-label", "x"}}));
  std::string out;
  reg.render(out);
  CHECK(out == "# HELP test_things_total Things.\\nMore help \\\\ here.\n"
               "# TYPE test_things_total counter\n"
               "test_things_total{name=\"back\\\\slash\\nnewline\"} 1\n"
               "test_things_total{name=\"quo\\\"te\"} 3\n");
}

TEST_CASE("the exposition names every shard series once and passes promtool") {
  runtime_fixture fx;
  auto& rt = *fx.rt;
  // Traffic, so that the values are not all zero.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto log = std::make_shared<event_log>();
  recorder_options ro;
  ro.echo = true;
  auto conn = connect_accepted_socket(rt, sv[0], recorder(log, ro));
  REQUIRE(conn);
  REQUIRE(raw_send_all(sv[1], "ping"));
  CHECK(raw_read_exact(sv[1], 4) == "ping");
  // A family with awkward label values in the global registry.
  metrics_registry::global()
      .family("shardwire_test_escapes_total", "Label escaping in the test.",
              metric_type::counter)
      .counter({{"value", "a\"b\\c\nd"}})
      .add();
  auto text = render_prometheus(rt);
  for (auto* name :
       {"shardwire_open_connections", "shardwire_accepted_connections_total",
        "shardwire_received_bytes_total", "shardwire_sent_bytes_total",
        "shardwire_read_pauses_total", "shardwire_write_pauses_total",
        "shardwire_mailbox_depth_max", "shardwire_deliveries_total",
        "shardwire_poller_wakeups_total", "shardwire_stalls_total"}) {
    INFO(name);
    auto type_line = std::string{"# TYPE "} + name + " ";
    auto first = text.find(type_line);
    CHECK(first != std::string::npos);
    CHECK(text.find(type_line, first + 1) == std::string::npos);
    CHECK(text.find(std::string{name} + "{shard=\"1\"") != std::string::npos);
  }
  CHECK(text.find("shardwire_deliveries_total{shard=\"0\",path=\"fast\"}") !=
        std::string::npos);
  CHECK(text.find("{value=\"a\\\"b\\\\c\\nd\"} 1\n") != std::string::npos);
  if (auto r = promtool_check(text)) {
    INFO(r->second);
    CHECK(r->first == 0);
    CHECK(r->second.empty());
  } else {
    WARN("promtool is not installed (Debian package prometheus): the "
         "exposition text was not checked by it");
  }
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost", true));
  raw_close(sv[1]);
}

// -- stall detector ----------------------------------------------------------

TEST_CASE("a handler stuck past stall-ms is reported once, with its actor and "
          "a backtrace") {
  runtime_fixture fx(2, [](test_config& cfg) { cfg.stall_ms = 100; });
  log_capture logs; // after the runtime, which sets the log level
  auto& rt = *fx.rt;
  auto hdl = spawn_on<spinner>(rt.shard_at(1));
  auto r = call<int>(rt, hdl, spin_atom::value, 300);
  REQUIRE(r);
  REQUIRE(logs.wait_for("stall:"));
  std::string all;
  for (auto& line : logs.lines())
    all += line + "\n";
  INFO(all);
  CHECK(logs.count("stall:") == 1);
  CHECK(logs.count("actor test_spinner") == 1);
  CHECK(logs.count("shard 1: stall:") == 1);
  CHECK(logs.count("#0 ") == 1);
  CHECK(total(rt, &shard_metrics::stalls) == 1);
  CHECK(rt.shard_at(1).metrics().stalls.value() == 1);
  // Quick handlers after it: nothing more.
  for (int i = 0; i < 20; ++i)
    REQUIRE(call<int>(rt, hdl, spin_atom::value, 0));
  CHECK(logs.count("stall:") == 1);
  caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
}

TEST_CASE("quick handlers are never reported as stalls") {
  runtime_fixture fx(2, [](test_config& cfg) { cfg.stall_ms = 100; });
  log_capture logs; // after the runtime, which sets the log level
  auto& rt = *fx.rt;
  auto hdl = spawn_on<spinner>(rt.shard_at(0));
  for (int i = 0; i < 50; ++i)
    REQUIRE(call<int>(rt, hdl, spin_atom::value, 1));
  CHECK(logs.count("stall:") == 0);
  CHECK(total(rt, &shard_metrics::stalls) == 0);
  caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
}

TEST_CASE("--shardwire.stall-ms and --shardwire.metrics-collect parse and are "
          "validated") {
  runtime_config cfg;
  std::vector<std::string> args{"prog", "--shardwire.stall-ms=25",
                                "--shardwire.metrics-collect=false"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  CHECK_FALSE(parse_args(cfg, static_cast<int>(argv.size()), argv.data()));
  CHECK(cfg.stall_ms == 25);
  CHECK_FALSE(cfg.metrics_collect);
  cfg.stall_ms = 600'001;
  CHECK_FALSE(validate_runtime_options(cfg));
  runtime_config bad;
  std::string arg = "--shardwire.metrics-collect=maybe";
  argv = {args[0].data(), arg.data()};
  CHECK(parse_args(bad, 2, argv.data()) == 1);
}
