// A byte backend for the stream transport core that replays a script and
// records every call (tests only; docs/transport-core.md, "Tests that the
// split makes possible"). The contract it implements is
// transports/core/stream_backend.hpp.
//
// The test holds the `backend_script` (a shared_ptr); the backend, a member
// of the transport actor, holds another reference. Everything runs on the
// test thread, which has adopted the transport's shard (core_harness.hpp):
// - the script's queues say what each `read` / `write` returns; when a
//   queue is empty its `*_default` step answers;
// - the test injects readiness with `ready(readable, writable, failed)`.
//   Readiness is level-triggered, as the fd poller and the simulated link
//   give it: it stays until a read says would_block (readable), a write
//   takes less than offered or says would_block (writable); `failed` stays
//   until the test clears it. While the core wants something that is ready,
//   the backend posts one job to the shard that calls `on_io_ready`; the
//   job runs from the harness loop, never inside a core call, and reports
//   only what is wanted when it runs;
// - every call is recorded (`calls`, `wire`, `interest`, counters), and a
//   contract violation by the core (a call after stop, off the shard
//   thread, an empty part, a second start) is recorded in `violations`.
#pragma once

#include "actors/errors.hpp"
#include "runtime/buffer.hpp"
#include "runtime/fd_poller.hpp"
#include "runtime/shard.hpp"
#include "transports/core/stream_backend.hpp"

#include <caf/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace shardwire::test {

/// What one scripted `read` returns.
struct read_step {
  enum class kind : uint8_t { bytes, would_block, eof, error };
  kind what = kind::would_block;
  std::string bytes;
  int err = 0;

  /// Bytes (at most the chunk's capacity per read: the rest stays queued).
  static read_step data(std::string s) {
    return {kind::bytes, std::move(s), 0};
  }
  static read_step block() { return {kind::would_block, {}, 0}; }
  static read_step end() { return {kind::eof, {}, 0}; }
  static read_step error(int e) { return {kind::error, {}, e}; }
};

/// What one scripted `write` returns.
struct write_step {
  enum class kind : uint8_t { take, take_all, would_block, error };
  kind what = kind::take_all;
  size_t n = 0;
  int err = 0;

  /// Takes min(n, offered) bytes.
  static write_step take(size_t n) { return {kind::take, n, 0}; }
  static write_step all() { return {kind::take_all, 0, 0}; }
  static write_step block() { return {kind::would_block, 0, 0}; }
  static write_step error(int e) { return {kind::error, 0, e}; }
};

/// The script and the record of one scripted backend, shared by the test
/// and the backend. Test thread only (the shard's adopted thread).
struct backend_script : std::enable_shared_from_this<backend_script> {
  // -- script -------------------------------------------------------------

  std::deque<read_step> reads;
  std::deque<write_step> writes;
  /// Answers a read / write when its queue is empty.
  read_step read_default = read_step::block();
  write_step write_default = write_step::all();
  /// Non-zero: start fails with this errno.
  int start_errno = 0;
  /// Which calls count as steps for error injection (bits of `op`).
  enum op : uint8_t { op_read = 1, op_write = 2, op_want = 4 };
  uint8_t fail_on = op_read | op_write | op_want;
  /// Error injection for sweeps: the `fail_at`-th call of a kind in
  /// `fail_on` (counted from 0 in `steps`) reports `fail_errno` instead of
  /// its scripted result. -1: none.
  long fail_at = -1;
  int fail_errno = ECONNRESET;

  // -- readiness (level) --------------------------------------------------

  bool readable = false;
  bool writable = true;
  bool failed = false;

  /// Makes the given conditions true (false leaves a condition as it is)
  /// and reports them while the core wants them.
  void ready(bool r, bool w = false, bool f = false) {
    readable = readable || r;
    writable = writable || w;
    failed = failed || f;
    dispatch();
  }

  /// Makes writing block until `ready(false, true)`.
  void block_writes() { writable = false; }

  // -- record -------------------------------------------------------------

  /// Every byte a write took, in order: what reached the "wire".
  std::string wire;
  /// Every call in order: "start", "want:r-h" (the bits wanted), "read:N",
  /// "read:block", "read:eof", "read:errno=N", "write:T/O" (taken of
  /// offered), "write:block", "write:errno=N", "want:rw-:errno=N",
  /// "shutdown_write", "stop",
  /// "ready:rwf" (a readiness call made, what it reported).
  std::vector<std::string> calls;
  /// The interest after each change (want calls that changed nothing are
  /// only in `calls`).
  std::vector<uint8_t> interest;
  /// Contract violations seen (empty in a correct run).
  std::vector<std::string> violations;
  uint8_t wanted = 0;
  long steps = 0; // calls of the kinds in `fail_on`
  int starts = 0;
  int stops = 0;
  int shutdowns = 0;
  int reads_done = 0;
  int writes_done = 0;
  int readiness_calls = 0;
  size_t last_read_max = 0;
  // Where the last read wrote (a buffered protocol's lent memory, or the
  // core's own chunk).
  const std::byte* last_read_at = nullptr;
  bool open = false;
  bool destroyed = false;

  /// How many calls starting with `prefix` were recorded.
  size_t count(const std::string& prefix) const {
    return static_cast<size_t>(
        std::count_if(calls.begin(), calls.end(), [&](const std::string& c) {
          return c.compare(0, prefix.size(), prefix) == 0;
        }));
  }

  // -- used by scripted_backend -------------------------------------------

  transport_core::io_owner* owner = nullptr;
  shard* home = nullptr;
  bool posted = false;

  /// True if this call is the one that must fail (and counts it).
  bool inject(op kind) {
    if ((fail_on & kind) == 0) return false;
    return steps++ == fail_at;
  }

  void check_thread(const char* what) {
    if (home != nullptr && !home->on_thread())
      violations.push_back(std::string{what} + " off the shard thread");
  }

  /// Posts one readiness call if the core wants something that is ready.
  void dispatch() {
    if (posted || !open || home == nullptr) return;
    if (!pending()) return;
    posted = true;
    home->post([self = shared_from_this()] {
      self->posted = false;
      if (!self->open || !self->pending()) return;
      bool r = (self->wanted & fd_read) != 0 && self->readable;
      bool w = (self->wanted & fd_write) != 0 && self->writable;
      bool f = self->failed;
      ++self->readiness_calls;
      self->calls.push_back(std::string{"ready:"} + (r ? "r" : "-") +
                            (w ? "w" : "-") + (f ? "f" : "-"));
      self->owner->on_io_ready(r, w, f);
      // The core calls want() after every readiness call, which dispatches
      // again while something is still ready; nothing to do here.
    });
  }

  bool pending() const {
    bool r = (wanted & fd_read) != 0 && (readable || failed);
    bool w = (wanted & fd_write) != 0 && (writable || failed);
    bool h = (wanted & fd_hangup) != 0 && failed;
    return r || w || h;
  }
};

using script_ptr = std::shared_ptr<backend_script>;

/// The backend: one end of nothing, answering from a backend_script.
class scripted_backend {
public:
  /// Small, so that gathered writes of the queue take several calls.
  static constexpr size_t max_parts = 2;

  explicit scripted_backend(script_ptr script) : s_(std::move(script)) {}

  ~scripted_backend() {
    if (s_->open) s_->violations.push_back("destroyed while open");
    s_->destroyed = true;
  }

  scripted_backend(const scripted_backend&) = delete;
  scripted_backend& operator=(const scripted_backend&) = delete;

  caf::error start(transport_core::io_owner& owner, shard& home,
                   transport_core::stream_direction) {
    s_->home = &home;
    s_->check_thread("start");
    s_->calls.push_back("start");
    if (++s_->starts > 1) s_->violations.push_back("second start");
    if (s_->start_errno != 0) return make_errno_error(s_->start_errno, "start");
    s_->owner = &owner;
    s_->open = true;
    return {};
  }

  void stop() noexcept {
    s_->check_thread("stop");
    s_->calls.push_back("stop");
    ++s_->stops;
    s_->open = false;
    s_->owner = nullptr;
  }

  bool is_open() const noexcept { return s_->open; }

  transport_core::io_result read(std::span<std::byte> into) {
    using transport_core::io_result;
    on_call("read");
    ++s_->reads_done;
    auto max = into.size();
    s_->last_read_at = into.data();
    s_->last_read_max = max;
    if (s_->inject(backend_script::op_read))
      return fail("read", s_->fail_errno);
    read_step step = s_->read_default;
    bool scripted = !s_->reads.empty();
    if (scripted) step = s_->reads.front();
    switch (step.what) {
    case read_step::kind::bytes: {
      // At most what fits: the rest stays for the next read.
      auto n = std::min(max, step.bytes.size());
      std::copy_n(reinterpret_cast<const std::byte*>(step.bytes.data()), n,
                  into.data());
      if (scripted) {
        if (n == step.bytes.size())
          s_->reads.pop_front();
        else
          s_->reads.front().bytes.erase(0, n);
      }
      s_->calls.push_back("read:" + std::to_string(n));
      return {n, 0, false};
    }
    case read_step::kind::would_block:
      if (scripted) s_->reads.pop_front();
      s_->readable = false; // until the test says ready again
      s_->calls.push_back("read:block");
      return {0, io_result::would_block, false};
    case read_step::kind::eof:
      // End of input is a fact, not an edge: it stays (as for an fd).
      if (scripted) s_->reads.pop_front();
      s_->calls.push_back("read:eof");
      return {0, 0, true};
    case read_step::kind::error:
      if (scripted) s_->reads.pop_front();
      return fail("read", step.err);
    }
    return {};
  }

  transport_core::io_result write(const buffer* parts, size_t n) {
    using transport_core::io_result;
    on_call("write");
    ++s_->writes_done;
    size_t offered = 0;
    size_t cnt = std::min(n, max_parts);
    for (size_t i = 0; i < cnt; ++i) {
      if (parts[i].empty()) s_->violations.push_back("empty part in write");
      offered += parts[i].size();
    }
    if (offered == 0) s_->violations.push_back("write of nothing");
    if (s_->inject(backend_script::op_write))
      return fail("write", s_->fail_errno);
    write_step step = s_->write_default;
    if (!s_->writes.empty()) {
      step = s_->writes.front();
      s_->writes.pop_front();
    }
    if (step.what == write_step::kind::would_block ||
        (!s_->writable && !s_->failed)) {
      // While not writable (block_writes, or after a short write) a write
      // blocks whatever the script says and leaves the step for later; a
      // pending failure lets the script answer (EPIPE, ECONNRESET, ...).
      if (step.what != write_step::kind::would_block)
        s_->writes.push_front(step);
      s_->writable = false;
      s_->calls.push_back("write:block");
      return {0, io_result::would_block, false};
    }
    if (step.what == write_step::kind::error) return fail("write", step.err);
    size_t taken = step.what == write_step::kind::take_all
                       ? offered
                       : std::min(step.n, offered);
    size_t left = taken;
    for (size_t i = 0; i < cnt && left > 0; ++i) {
      auto k = std::min(left, parts[i].size());
      s_->wire.append(parts[i].view().substr(0, k));
      left -= k;
    }
    if (taken < offered) s_->writable = false; // full until ready again
    s_->calls.push_back("write:" + std::to_string(taken) + "/" +
                        std::to_string(offered));
    return {taken, 0, false};
  }

  void shutdown_write() noexcept {
    on_call("shutdown_write");
    s_->calls.push_back("shutdown_write");
    ++s_->shutdowns;
  }

  int want(uint8_t bits) {
    on_call("want");
    std::string name = "want:";
    name += (bits & fd_read) ? 'r' : '-';
    name += (bits & fd_write) ? 'w' : '-';
    name += (bits & fd_hangup) ? 'h' : '-';
    if (s_->inject(backend_script::op_want)) {
      s_->calls.push_back(name + ":errno=" + std::to_string(s_->fail_errno));
      return s_->fail_errno;
    }
    s_->calls.push_back(name);
    if (bits != s_->wanted) s_->interest.push_back(bits);
    s_->wanted = bits;
    s_->dispatch();
    return 0;
  }

  void describe(transport_info& info) const {
    info.kind = kind();
    info.fd = -1;
  }

  const std::string& kind() const noexcept {
    static const std::string name{"scripted"};
    return name;
  }

  int fd() const noexcept { return -1; }

  backend_script& script() noexcept { return *s_; }

private:
  void on_call(const char* what) {
    s_->check_thread(what);
    if (!s_->open)
      s_->violations.push_back(std::string{what} + " while closed");
  }

  transport_core::io_result fail(const char* what, int err) {
    s_->calls.push_back(std::string{what} + ":errno=" + std::to_string(err));
    return {0, err, false};
  }

  script_ptr s_;
};

} // namespace shardwire::test
