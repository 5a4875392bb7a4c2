#include "transports/detail/subprocess_transport.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/stream_transport.hpp"
#include "transports/detail/watch_fd.hpp"

#include <asio/post.hpp>

#include <cerrno>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace shardwire::detail {

subprocess_transport::subprocess_transport(caf::actor_config& cfg,
                                           child_request req,
                                           subprocess_protocol_factory factory,
                                           subprocess_options opts,
                                           stream_settings settings,
                                           subprocess_callback done)
    : pinned(cfg), req_(std::move(req)), factory_(std::move(factory)),
      opts_(std::move(opts)), settings_(settings), done_(std::move(done)),
      alive_(std::make_shared<bool>(true)) {
  // nop
}

bool subprocess_transport::deliver_now(caf::mailbox_element_ptr& ptr) {
  if (!ptr->sender) return false;
  return pinned::deliver_now(ptr);
}

void subprocess_transport::report(caf::expected<subprocess> result) {
  if (done_) {
    auto f = std::move(done_);
    done_ = nullptr;
    f(std::move(result));
  }
}

subprocess_transport::behavior_type subprocess_transport::make_behavior() {
  // Spawn first: a spawn failure reaches the caller before any protocol
  // exists (asyncio raises before protocol callbacks).
  auto spawned = spawn_child(req_);
  if (!spawned) {
    report(std::move(spawned.error()));
    lost_sent_ = true;
    quit();
    return behavior_type::make_empty_behavior();
  }
  child_ = *spawned;
  // A running child keeps its transport alive: nobody else has to hold a
  // handle (a fire-and-forget spawn), and an actor destroyed as unreachable
  // would skip the orderly end (exited, lost, reaping). Released when the
  // transport ends (try_finish, on_exit).
  self_ref_ = ctrl();
  info_.pid = child_.pid;
  info_.pgid = child_.pgid;
  info_.args = req_.argv;
  info_.shard = static_cast<uint32_t>(home().id());
  try {
    if (factory_) proto_ = factory_(home());
  } catch (const std::exception& e) {
    log::debug("subprocess protocol factory threw: ", e.what());
  }
  factory_ = nullptr;
  if (!proto_) {
    returncode_ = kill_and_reap_child();
    report(make_error(sw_errc::factory_failed));
    lost_sent_ = true;
    quit();
    return behavior_type::make_empty_behavior();
  }
  monitor(proto_);
  set_down_handler([this](caf::down_msg& msg) { on_protocol_down(msg); });
  // The pipes: this actor is their protocol. They ask `connected` at once;
  // the answers are held until our protocol handled its own, so no output
  // is read before that.
  auto as_protocol = caf::actor_cast<protocol_actor>(this);
  for (int i = 0; i < 3; ++i) {
    if (child_.stdio[i] < 0) continue;
    auto& p = pipes_[i];
    p.hdl = spawn_pipe_transport(
        home(), child_.stdio[i],
        i == 0 ? stream_direction::write_only : stream_direction::read_only,
        [as_protocol](shard&) { return as_protocol; }, settings_, nullptr);
    child_.stdio[i] = -1; // the pipe transport owns it now
    p.addr = p.hdl.address();
    p.open = true;
  }
  request(proto_, caf::infinite,
          subprocess_connected{
              caf::actor_cast<subprocess_transport_actor>(this), info_})
      .then(
          [this] {
            if (lost_sent_) return;
            started_ = true;
            report(subprocess{caf::actor_cast<subprocess_transport_actor>(this),
                              proto_, info_});
            for (auto& rp : held_pipes_)
              static_cast<caf::response_promise&>(rp).deliver(caf::unit);
            held_pipes_.clear();
          },
          [this](caf::error& err) {
            report(err);
            do_close();
          });
  watch_exit();
  return {
      // -- from the pipes --
      [this](connected&) { return on_pipe_connected(); },
      [this](data& msg) { on_pipe_data(msg); },
      [](eof) { return false; }, // a read pipe ends after eof anyway
      [this](pause) { on_pipe_flow(true); },
      [this](shardwire::resume) { on_pipe_flow(false); },
      [this](lost& msg) { on_pipe_lost(msg); },
      [this](child_reaped msg) {
        returncode_ = msg.status;
        if (proto_) send(proto_, exited{msg.status, reaped_oom_});
        try_finish();
      },
      // -- from the user --
      [this](shardwire::write& msg) { return to_stdin(std::move(msg)); },
      [this](writelines& msg) { return to_stdin(std::move(msg)); },
      [this](write_eof) {
        if (pipes_[0].open) send(pipes_[0].hdl, write_eof{});
      },
      [this](shardwire::close) { do_close(); },
      [this](shardwire::signal msg) { return do_signal(msg.signo, msg.group); },
      [this](terminate) { return do_signal(SIGTERM, false); },
      [this](shardwire::kill) { return do_signal(SIGKILL, false); },
      [this](get_pid) { return static_cast<int32_t>(info_.pid); },
      [this](get_returncode) -> caf::result<caf::optional<int32_t>> {
        if (returncode_) return caf::optional<int32_t>{*returncode_};
        return caf::optional<int32_t>{};
      },
      [this](get_pipe_transport msg) { return pipe_transport(msg.fd); },
      [this](get_extra_info) { return info_; },
      [this](get_status) { return status(); },
      [this](get_protocol) { return proto_; },
      [this](set_subprocess_protocol& msg) {
        if (!msg.protocol) {
          log::warning("set_subprocess_protocol with an invalid handle "
                       "ignored");
          return;
        }
        demonitor(proto_.address());
        proto_ = std::move(msg.protocol);
        monitor(proto_);
      },
  };
}

caf::result<transport_status> subprocess_transport::status() {
  transport_status st;
  st.closing = closing_; // asyncio: close() was called
  st.reading = started_ && !closing_ && (pipes_[1].open || pipes_[2].open);
  if (!pipes_[0].open) return st;
  // The write buffer is stdin's (asyncio keeps it on the pipe transport).
  auto rp = make_response_promise<transport_status>();
  request(pipes_[0].hdl, caf::infinite, get_write_buffer_size{})
      .then([rp, st](uint64_t n) mutable {
        st.write_buffer_size = n;
        rp.deliver(st);
      },
            [rp, st](caf::error&) mutable { rp.deliver(st); });
  return rp;
}

// -- pipe side ----------------------------------------------------------------

int subprocess_transport::sender_fd() {
  auto& sender = current_sender();
  if (!sender) return -1;
  auto addr = caf::actor_cast<caf::actor_addr>(sender);
  for (int i = 0; i < 3; ++i)
    if (pipes_[i].addr && pipes_[i].addr == addr) return i;
  return -1;
}

caf::result<void> subprocess_transport::on_pipe_connected() {
  if (started_ || lost_sent_) return caf::unit;
  auto rp = make_response_promise<void>();
  held_pipes_.push_back(rp);
  return rp;
}

void subprocess_transport::on_pipe_data(data& msg) {
  auto fd = sender_fd();
  if (fd < 0 || !proto_) return;
  // The read ticket moves along: the pipe is read only as fast as the
  // protocol handles its output.
  send(proto_, pipe_data{fd, std::move(msg.bytes), std::move(msg.ticket)});
}

void subprocess_transport::on_pipe_flow(bool paused) {
  if (sender_fd() != 0 || !proto_) return;
  if (paused)
    send(proto_, pause{});
  else
    send(proto_, shardwire::resume{});
}

void subprocess_transport::on_pipe_lost(lost& msg) {
  auto fd = sender_fd();
  if (fd < 0) return;
  auto& p = pipes_[fd];
  if (!p.open) return;
  p.open = false;
  if (proto_) send(proto_, pipe_lost{fd, std::move(msg.reason)});
  try_finish();
}

// -- user side ----------------------------------------------------------------

template <class Msg>
caf::result<void> subprocess_transport::to_stdin(Msg&& msg) {
  auto* cur = current_mailbox_element();
  bool is_request = cur != nullptr && cur->mid.is_request();
  caf::error err;
  if (!pipes_[0].hdl)
    err = make_error(sw_errc::not_supported, "the child's stdin is not a pipe");
  else if (!pipes_[0].open || closing_)
    err = make_error(sw_errc::closed, "the child's stdin is closed");
  if (err) {
    if (is_request) return err;
    log::warning("write to subprocess dropped: ", describe(err));
    return caf::unit;
  }
  if (is_request) return delegate(pipes_[0].hdl, std::forward<Msg>(msg));
  send(pipes_[0].hdl, std::forward<Msg>(msg));
  return caf::unit;
}

caf::result<void> subprocess_transport::do_signal(int signo, bool group) {
  if (returncode_ || reaped_)
    return make_error(sw_errc::process_exited,
                      "process " + std::to_string(info_.pid) + " exited");
  if (group && child_.pgid != child_.pid)
    return make_error(sw_errc::invalid_argument,
                      "the child has no process group of its own");
  // The child is not reaped yet, so its pid (and group id) cannot have been
  // recycled: the signal reaches this child or its group, nothing else.
  int rc;
  if (group)
    rc = ::kill(-child_.pgid, signo);
  else if (pidfd_ >= 0)
    rc = pidfd_signal(pidfd_, signo);
  else
    rc = ::kill(child_.pid, signo);
  if (rc != 0)
    return make_errno_error(errno, "signal " + std::to_string(signo));
  return caf::unit;
}

caf::result<transport_actor>
subprocess_transport::pipe_transport(int fd) const {
  if (fd < 0 || fd > 2 || !pipes_[fd].hdl)
    return make_error(sw_errc::invalid_argument,
                      "fd " + std::to_string(fd) + " is not a pipe");
  if (!pipes_[fd].open)
    return make_error(sw_errc::closed,
                      "pipe " + std::to_string(fd) + " is closed");
  return pipes_[fd].hdl;
}

void subprocess_transport::do_close() {
  if (closing_ || lost_sent_) return;
  closing_ = true;
  for (auto& p : pipes_)
    if (p.open) send(p.hdl, shardwire::close{});
  if (!returncode_ && !reaped_) {
    bool group = opts_.kill_group_on_exit && child_.pgid == child_.pid;
    if (group) ::kill(-child_.pgid, SIGKILL);
    // Its cgroup holds all it started, in its group or not.
    if (child_.cgroup) child_.cgroup->kill_all();
    if (pidfd_ >= 0)
      pidfd_signal(pidfd_, SIGKILL);
    else
      ::kill(child_.pid, SIGKILL);
  }
}

// -- the child ----------------------------------------------------------------

int subprocess_transport::kill_and_reap_child() {
  if (child_.cgroup) child_.cgroup->kill_all();
  int status =
      kill_and_reap(child_.pid, child_.pgid, child_.pgid == child_.pid);
  release_cgroup();
  return status;
}

void subprocess_transport::release_cgroup() {
  if (!child_.cgroup) return;
  // Read before the directory goes; what the child left behind dies with
  // the cgroup (systemd's KillMode=control-group).
  reaped_oom_ = child_.cgroup->oom_kills() > 0;
  child_.cgroup->release();
  child_.cgroup.reset();
}

void subprocess_transport::watch_exit() {
  if (opts_.watcher != child_watcher::sigchld) {
    int fd = open_pidfd(child_.pid);
    caf::error err = fd >= 0 ? caf::error{}
                             : make_errno_error(errno, "pidfd_open");
    if (fd >= 0) {
      err = watch_fd(pidfd_watch_, home(), fd, *this, fd_read);
      if (!err) {
        pidfd_ = fd;
        return;
      }
      close_fd(fd);
    }
    log::debug("pidfd unavailable (", describe(err),
               "); watching SIGCHLD instead");
  }
  sigchld_.emplace(home().io(), SIGCHLD);
  sigchld_->async_wait([this, alive = alive_](std::error_code ec, int) {
    if (*alive && !ec) on_child_event();
  });
  // The child may have exited before the handler was installed.
  asio::post(home().io(), [this, alive = alive_] {
    if (*alive) on_child_event();
  });
}

void subprocess_transport::stop_watching() {
  std::error_code ignored;
  unwatch_and_close(pidfd_watch_, pidfd_);
  if (sigchld_) {
    sigchld_->cancel(ignored);
    sigchld_.reset();
  }
}

void subprocess_transport::on_child_event() {
  if (returncode_ || reaped_) return;
  io_handler_scope guard{*this};
  // Peek first (WNOWAIT): the child stays a zombie, holding its pid and
  // group id, while what is left of its group is killed.
  siginfo_t si = {};
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(child_.pid), &si,
                  WEXITED | WNOHANG | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0 && si.si_pid == 0) {
    // Still running: a SIGCHLD for another child, or a spurious wake-up.
    if (sigchld_)
      sigchld_->async_wait([this, alive = alive_](std::error_code ec, int) {
        if (*alive && !ec) on_child_event();
      });
    else
      pidfd_watch_.clear_ready(fd_read); // wait for the next edge
    return;
  }
  if (opts_.kill_group_on_exit && child_.pgid == child_.pid)
    ::kill(-child_.pgid, SIGKILL);
  auto status = try_reap(child_.pid);
  release_cgroup();
  // The return code becomes visible (and `lost` possible) only when
  // child_reaped is handled, so `exited` always precedes `lost`; signals
  // are refused from now on (the pid may be recycled).
  reaped_ = true;
  reaped_status_ = status ? *status : 255;
  stop_watching();
  // Reported through this actor's own mailbox: `exited` and maybe `lost`
  // then go out from a message handler, where the protocol may end at once
  // (fast path) and this actor may quit the regular way.
  caf::anon_send(caf::actor_cast<caf::actor>(this),
                 child_reaped{status ? *status : 255});
}

void subprocess_transport::try_finish() {
  if (lost_sent_ || !returncode_) return;
  for (auto& p : pipes_)
    if (p.open) return;
  lost_sent_ = true;
  if (proto_) send(proto_, lost{});
  quit();
  // Safe: whoever runs this handler (resume, deliver_now) holds a reference.
  self_ref_.reset();
}

void subprocess_transport::on_protocol_down(const caf::down_msg& msg) {
  if (msg.source != proto_.address()) return;
  proto_ = nullptr;
  if (msg.reason && msg.reason != caf::exit_reason::normal)
    log::debug("subprocess protocol failed (", describe(msg.reason),
               "), killing the child");
  // Nobody is left to hear from the child: close kills it; the transport
  // ends once it exited and its pipes closed.
  do_close();
}

void subprocess_transport::on_exit() {
  *alive_ = false;
  if (child_.pid > 0 && !returncode_ && !reaped_) {
    // Terminated from outside (runtime shutdown): nothing may outlive the
    // transport. SIGKILL cannot be caught, so the wait is short.
    returncode_ = kill_and_reap_child();
    if (proto_ && !lost_sent_) send(proto_, exited{*returncode_, reaped_oom_});
  } else if (reaped_ && !returncode_ && proto_ && !lost_sent_) {
    // child_reaped was still queued
    send(proto_, exited{reaped_status_, reaped_oom_});
  }
  if (!lost_sent_) {
    lost_sent_ = true;
    auto reason = fail_state();
    if (!reason) reason = make_error(sw_errc::closed);
    if (proto_) send(proto_, lost{std::move(reason)});
  }
  report(make_error(sw_errc::closed, "subprocess transport exited"));
  stop_watching();
  for (int& fd : child_.stdio)
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  for (auto& rp : held_pipes_)
    rp.deliver(make_error(sw_errc::closed));
  held_pipes_.clear();
  for (auto& p : pipes_) {
    if (p.open && p.hdl) anon_send_exit(p.hdl, caf::exit_reason::user_shutdown);
    p = pipe_slot{};
  }
  proto_ = nullptr;
  // Last: finalize's caller holds its own reference while this runs.
  self_ref_.reset();
}

} // namespace shardwire::detail
