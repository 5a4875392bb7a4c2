#include "demos/kv_quorum/coordinator.hpp"

#include "demos/kv_line_protocol.hpp"

#include "actors/messages.hpp"

#include <caf/send.hpp>

#include <stdexcept>
#include <string_view>
#include <utility>

namespace kv_quorum {

// The protocol of one connection to a replica: frames lines, hands the
// replies to the coordinator. Malformed input closes the connection (the
// coordinator reconnects at its next poll).
class replica_link : public shardwire::protocol {
public:
  replica_link(std::shared_ptr<coordinator> c, size_t index, uint64_t gen)
      : c_(std::move(c)), index_(index), gen_(gen) {}

  void connection_made(shardwire::transport_ref& t) override {
    c_->attached(index_, gen_, t.handle());
  }

  void data_received(const shardwire::buffer& bytes) override {
    bool bad = false;
    bool fits = lines_.feed(bytes.view(), [&](std::string_view line) {
      auto m = bad ? std::nullopt : parse(line);
      if (!m || (m->kind != message::reply && m->kind != message::ack)) {
        bad = true;
        return;
      }
      c_->received(index_, *m);
    });
    if (bad || !fits) transport().close();
  }

  void connection_lost(const caf::error&) override {
    c_->detached(index_, gen_);
  }

private:
  std::shared_ptr<coordinator> c_;
  size_t index_;
  uint64_t gen_;
  kv::line_reader lines_;
};

std::shared_ptr<coordinator>
coordinator::make(coordinator_options opts,
                  std::function<std::chrono::nanoseconds()> now,
                  connector connect) {
  return std::shared_ptr<coordinator>(
      new coordinator(std::move(opts), std::move(now), std::move(connect)));
}

coordinator::coordinator(coordinator_options opts,
                         std::function<std::chrono::nanoseconds()> now,
                         connector connect)
    : opts_(std::move(opts)), now_(std::move(now)),
      connect_(std::move(connect)), slots_(opts_.replicas) {}

void coordinator::async_get(std::string key, op_callback done) {
  operation op;
  op.key = std::move(key);
  op.done = std::move(done);
  start(std::move(op));
}

void coordinator::async_put(std::string key, std::string value,
                            op_callback done) {
  operation op;
  op.is_put = true;
  op.key = std::move(key);
  op.value = std::move(value);
  op.done = std::move(done);
  start(std::move(op));
}

void coordinator::start(operation op) {
  if (busy()) throw std::logic_error("kv_quorum: one operation at a time");
  if (stopped_) return;
  op.deadline = now_() + opts_.op_deadline;
  op_ = std::move(op);
  begin_phase(false);
}

void coordinator::begin_phase(bool storing) {
  auto& op = *op_;
  op.storing = storing;
  op.rid = ++next_rid_;
  op.phase_started = now_();
  op.answered.assign(opts_.replicas, false);
  op.answers = 0;
  for (size_t i = 0; i < slots_.size(); ++i)
    send_phase(i);
}

void coordinator::send_phase(size_t index) {
  auto& op = *op_;
  auto& s = slots_[index];
  if (!s.transport || op.answered[index]) return;
  message m;
  m.rid = op.rid;
  m.key = op.key;
  if (op.storing) {
    m.kind = message::store;
    m.version = op.best;
  } else {
    m.kind = message::query;
  }
  caf::anon_send(*s.transport,
                 shardwire::write{shardwire::buffer::copy_of(encode(m))});
}

void coordinator::finish(op_result r) {
  auto done = std::move(op_->done);
  op_.reset();
  done(std::move(r));
}

void coordinator::poll() {
  if (stopped_) return;
  for (size_t i = 0; i < slots_.size(); ++i) {
    auto& s = slots_[i];
    if (s.transport || s.connecting) continue;
    s.connecting = true;
    auto gen = ++next_gen_;
    auto self = shared_from_this();
    connect_(i, shardwire::make_protocol<replica_link>(self, i, gen),
             [self, i](bool ok) {
               if (!ok) self->slots_[i].connecting = false;
             });
  }
  if (!op_) return;
  auto now = now_();
  if (now >= op_->deadline) {
    finish({false, std::nullopt});
    return;
  }
  if (now - op_->phase_started >= opts_.phase_timeout) {
    op_->phase_started = now;
    for (size_t i = 0; i < slots_.size(); ++i)
      send_phase(i);
  }
}

void coordinator::stop() {
  stopped_ = true;
  op_.reset();
}

void coordinator::close() {
  stop();
  closing_ = true;
  for (auto& s : slots_) {
    if (s.transport) caf::anon_send(*s.transport, shardwire::close{});
    s.transport.reset();
  }
}

size_t coordinator::connected() const {
  size_t n = 0;
  for (auto& s : slots_)
    n += s.transport ? 1 : 0;
  return n;
}

void coordinator::attached(size_t index, uint64_t gen,
                           shardwire::transport_actor t) {
  if (stopped_) {
    // A connection that was under way when `close` was called.
    if (closing_) caf::anon_send(t, shardwire::close{});
    return;
  }
  auto& s = slots_[index];
  s.transport = std::move(t);
  s.gen = gen;
  s.connecting = false;
  if (op_) send_phase(index);
}

void coordinator::detached(size_t index, uint64_t gen) {
  if (stopped_) return;
  auto& s = slots_[index];
  if (s.gen != gen || !s.transport) return;
  s.transport.reset();
}

void coordinator::received(size_t index, const message& m) {
  if (stopped_ || !op_ || m.rid != op_->rid || op_->answered[index]) return;
  auto& op = *op_;
  if (op.storing != (m.kind == message::ack)) return;
  op.answered[index] = true;
  ++op.answers;
  if (!op.storing) {
    if (op.answers == 1) {
      op.best = m.version;
    } else if (m.version.ts != op.best.ts) {
      op.agree = false;
      if (op.best.ts < m.version.ts) op.best = m.version;
    }
    if (!op.is_put && opts_.stale_read_bug) {
      finish({true, m.version.value}); // the bug: one replica's view
      return;
    }
  }
  if (op.answers * 2 <= opts_.replicas) return; // no majority yet
  if (op.storing) {
    finish({true, op.is_put ? std::nullopt : op.best.value});
  } else if (op.is_put) {
    op.best = {{op.best.ts.counter + 1, opts_.id}, op.value};
    begin_phase(true);
  } else if (op.agree) {
    finish({true, op.best.value}); // a majority holds it already
  } else {
    begin_phase(true); // write back before returning
  }
}

} // namespace kv_quorum
