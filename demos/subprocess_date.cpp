// The asyncio documentation's subprocess example (loop.subprocess_exec() and
// SubprocessProtocol), as a shardwire program.
//
// Runs a child that prints the current date and time, collects its stdout
// through a callback-style subprocess protocol, and once both the exit and
// the end of the pipe arrived prints `Current date: <output>` and exits with
// the child's status. As in the example, stdin and stderr are inherited.
//
//   subprocess_date [--program=date] [--arg=...]
//
// The default child is `date '+%Y-%m-%d %H:%M:%S.%6N'`, which prints what
// Python's `print(datetime.datetime.now())` prints.
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/subprocess.hpp"

#include <chrono>
#include <future>
#include <memory>

using namespace shardwire;

namespace {

struct date_config : config {
  std::string program = "date";
  std::vector<std::string> args{"+%Y-%m-%d %H:%M:%S.%6N"};
  bool cgroup = false;

  date_config() {
    opt_group{custom_options_, "global"}
        .add(program, "program", "the child to run (looked up in PATH)")
        .add(args, "args", "its arguments, e.g. --args='[\"-u\"]'")
        .add(cgroup, "cgroup",
             "run the child in a cgroup of its own where the program may "
             "make one (whatever it starts dies with it)");
    shards = 1;
  }
};

struct result {
  std::string output;
  int returncode = 0;
};

using result_promise = std::shared_ptr<std::promise<result>>;

class date_protocol : public subprocess_protocol {
public:
  explicit date_protocol(result_promise done) : done_(std::move(done)) {}

  void pipe_data_received(int, const buffer& bytes) override {
    output_ += bytes.str();
  }

  void pipe_connection_lost(int, const caf::error&) override {
    pipe_closed_ = true;
    check_for_exit();
  }

  void process_exited(int returncode) override {
    returncode_ = returncode;
    exited_ = true;
    check_for_exit();
  }

private:
  void check_for_exit() {
    if (!pipe_closed_ || !exited_ || reported_) return;
    reported_ = true;
    transport().close();
    while (!output_.empty() &&
           (output_.back() == '\n' || output_.back() == '\r' ||
            output_.back() == ' '))
      output_.pop_back();
    done_->set_value(result{output_, returncode_});
    runtime::request_stop(); // wakes main, which waits for this or a signal
  }

  result_promise done_;
  std::string output_;
  int returncode_ = 0;
  bool pipe_closed_ = false;
  bool exited_ = false;
  bool reported_ = false;
};

} // namespace

int main(int argc, char** argv) {
  date_config cfg;
  if (auto rc = parse_args(cfg, argc, argv, [&] {
        return check_option(!cfg.program.empty(), "program",
                            "must name a program");
      }))
    return *rc;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  auto done = std::make_shared<std::promise<result>>();
  auto finished = done->get_future();
  std::vector<std::string> argv_child{cfg.program};
  argv_child.insert(argv_child.end(), cfg.args.begin(), cfg.args.end());
  subprocess_options opts;
  opts.stdin_ = stdio::inherit;
  opts.stderr_ = stdio::inherit;
  if (cfg.cgroup) opts.limits.cgroup = child_cgroup{};
  auto sp = subprocess_exec(
      rt, argv_child, make_subprocess_protocol<date_protocol>(done), opts);
  if (!sp) {
    demo::eprintln("error: cannot run ", cfg.program, ": ",
                   describe(sp.error()));
    return 127;
  }
  // Ctrl-C or SIGTERM before the child is done stops the program (the
  // runtime's shutdown kills the child and its group) instead of waiting
  // for a child that may never end; a requested stop exits 0, as every
  // shardwire program does.
  int sig = runtime::wait_for_stop_signal();
  if (finished.wait_for(std::chrono::seconds(0)) !=
      std::future_status::ready) {
    demo::eprintln("Stopped by signal ", sig, " before ", cfg.program,
                   " finished");
    return 0;
  }
  auto res = finished.get();
  demo::println("Current date: ", res.output);
  // A signal death reads as minus the signal number; a shell reports it as
  // 128 + n, so do the same.
  return res.returncode >= 0 ? res.returncode : 128 - res.returncode;
}
