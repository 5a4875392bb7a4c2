#include "demos/kv_quorum/replica.hpp"

#include "demos/kv_line_protocol.hpp"

#include <string_view>
#include <utility>

namespace kv_quorum {

versioned disk::get(const std::string& key) const {
  auto i = data.find(key);
  return i == data.end() ? versioned{} : i->second;
}

void disk::store(const std::string& key, const versioned& v) {
  auto& held = data[key];
  if (!(held.ts < v.ts)) return;
  if (persist) {
    try {
      persist(key, v); // written before it counts, durable before acked
    } catch (...) {
      failed = true;
      throw;
    }
    dirty_ = true;
  }
  held = v;
}

void disk::make_durable() {
  if (!dirty_ || !sync) return;
  try {
    sync();
  } catch (...) {
    failed = true;
    throw;
  }
  dirty_ = false;
}

namespace {

class replica_connection : public shardwire::protocol {
public:
  explicit replica_connection(std::shared_ptr<disk> d) : disk_(std::move(d)) {}

  void data_received(const shardwire::buffer& bytes) override {
    if (disk_->failed) {
      transport().close();
      return;
    }
    bool bad = false;
    // This read's answers, written once its stores are durable (one fsync
    // for the whole read: disk's group commit). A persist or sync that
    // throws ends the connection with nothing of this read answered.
    std::string answers;
    bool fits = lines_.feed(bytes.str(), [&](std::string_view line) {
      if (bad) return;
      auto m = parse(line);
      if (!m || (m->kind != message::query && m->kind != message::store)) {
        bad = true;
        return;
      }
      message answer;
      answer.rid = m->rid;
      if (m->kind == message::query) {
        answer.kind = message::reply;
        answer.version = disk_->get(m->key);
      } else {
        disk_->store(m->key, m->version);
        answer.kind = message::ack;
      }
      answers += encode(answer);
    });
    if (!answers.empty()) {
      disk_->make_durable();
      transport().write(shardwire::buffer::adopt(std::move(answers)));
    }
    if (bad || !fits) transport().close();
  }

private:
  std::shared_ptr<disk> disk_;
  kv::line_reader lines_;
};

} // namespace

shardwire::protocol_factory replica_protocol(std::shared_ptr<disk> d) {
  return shardwire::make_protocol<replica_connection>(std::move(d));
}

} // namespace kv_quorum
