#include "transports/detail/datagram_transport.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/core/write_limits.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardwire::detail {

void spawn_datagram_transport(shard& s, int fd, std::string kind,
                              datagram_protocol_factory factory,
                              datagram_settings settings,
                              datagram_callback done) {
  spawn_on<datagram_transport>(s, fd, std::move(kind), std::move(factory),
                               settings, std::move(done));
}

namespace {

// Receiving without a copy: one recvmmsg fills `slots` equal slots of one
// pooled block, and each datagram becomes a slice of it. A slot is at least
// `min_slot` bytes (an Ethernet-MTU datagram fits); each slot's iovec
// continues into a per-thread overflow area, so a longer datagram (up to
// max_size, as before) still arrives whole, and only such a datagram is
// copied into a right-sized buffer of its own.
//
// Trade-off: a slice pins its whole block, so a protocol that keeps one
// small datagram keeps up to recv_batch x min_slot bytes (32 KiB by default)
// alive. The block size follows the batches actually received (it grows while
// recvmmsg fills every slot and shrinks when it uses a quarter or less), so an
// endpoint that gets one datagram per wake-up uses 4 KiB blocks.
constexpr size_t min_slot = 2048;
constexpr size_t min_block = 4096;

struct recv_scratch {
  std::vector<std::byte> overflow;
  std::vector<mmsghdr> hdrs;
  std::vector<iovec> iovs; // two per datagram: slot, then overflow
  std::vector<sockaddr_storage> addrs;

  void prepare(std::byte* block, size_t slots, size_t slot, size_t tail) {
    if (overflow.size() < slots * tail) overflow.resize(slots * tail);
    if (hdrs.size() < slots) {
      hdrs.resize(slots);
      iovs.resize(2 * slots);
      addrs.resize(slots);
    }
    for (size_t i = 0; i < slots; ++i) {
      iovs[2 * i] = iovec{block + i * slot, slot};
      iovs[2 * i + 1] = iovec{overflow.data() + i * tail, tail};
      hdrs[i] = mmsghdr{};
      hdrs[i].msg_hdr.msg_name = &addrs[i];
      hdrs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      hdrs[i].msg_hdr.msg_iov = &iovs[2 * i];
      hdrs[i].msg_hdr.msg_iovlen = tail > 0 ? 2 : 1;
    }
  }
};

// Headers for one sendmmsg of queued datagrams.
struct send_scratch {
  std::vector<mmsghdr> hdrs;
  std::vector<iovec> iovs;
};

thread_local send_scratch send_area;

thread_local recv_scratch scratch;

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

} // namespace

caf::expected<std::pair<sockaddr_storage, socklen_t>>
to_sockaddr(const endpoint& peer) {
  sockaddr_storage ss = {};
  switch (peer.family) {
  case endpoint::kind::ipv4: {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(peer.port);
    if (::inet_pton(AF_INET, peer.host.c_str(), &in->sin_addr) != 1) break;
    return std::make_pair(ss, socklen_t{sizeof(sockaddr_in)});
  }
  case endpoint::kind::ipv6: {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(peer.port);
    if (::inet_pton(AF_INET6, peer.host.c_str(), &in6->sin6_addr) != 1) break;
    return std::make_pair(ss, socklen_t{sizeof(sockaddr_in6)});
  }
  case endpoint::kind::unix_path:
    return unix_address(peer.path);
  case endpoint::kind::none:
    break;
  }
  return make_error(sw_errc::invalid_argument,
                    "not a numeric address: " + to_string(peer));
}

datagram_transport::datagram_transport(caf::actor_config& cfg, int fd,
                                       std::string kind,
                                       datagram_protocol_factory factory,
                                       datagram_settings settings,
                                       datagram_callback done)
    : pinned(cfg), fd_(fd), alive_(std::make_shared<bool>(true)),
      kind_(std::move(kind)), factory_(std::move(factory)), settings_(settings),
      done_(std::move(done)) {
  if (settings_.recv_batch == 0) settings_.recv_batch = 1;
}

transport_info datagram_transport::make_info() const {
  transport_info info;
  info.kind = kind_;
  if (fd_ >= 0) {
    if (settings_.connected) info.peername = remote_endpoint(fd_);
    info.sockname = local_endpoint(fd_);
  }
  info.fd = fd_;
  info.shard = static_cast<uint32_t>(home().id());
  return info;
}

transport_status datagram_transport::status() const {
  transport_status st;
  st.closing = is_closing();
  st.reading = started_ && !user_paused_ && !closing_ && !lost_sent_;
  st.write_buffer_size = wq_bytes_;
  return st;
}

void datagram_transport::report(caf::expected<datagram_endpoint> result) {
  if (done_) {
    auto f = std::move(done_);
    done_ = nullptr;
    f(std::move(result));
  }
}

datagram_transport::behavior_type datagram_transport::make_behavior() {
  if (auto err = make_nonblocking(fd_); err != 0) {
    close_fd(fd_);
    fd_ = -1;
    abandon_start(make_errno_error(err, "fcntl"));
    return behavior_type::make_empty_behavior();
  }
  sock_.emplace(home().io(), fd_);
  if (settings_.connected) remote_ = remote_endpoint(fd_);
  credit_ = caf::make_counted<read_credit>(address(), settings_.read_high_water,
                                           settings_.read_low_water);
  if (!make_protocol(factory_)) {
    abandon_start(make_error(sw_errc::factory_failed));
    return behavior_type::make_empty_behavior();
  }
  watch_protocol();
  hold_self();
  proto_fast_ = pinned_base::of(proto_);
  auto self_hdl = caf::actor_cast<datagram_transport_actor>(this);
  request(proto_, caf::infinite, datagram_connected{self_hdl, make_info()})
      .then(
          [this] {
            if (lost_sent_) return;
            started_ = true;
            report(datagram_endpoint{
                caf::actor_cast<datagram_transport_actor>(this), proto_,
                make_info()});
            update_reading();
          },
          [this](caf::error& err) { connect_failed(std::move(err)); });
  return {
      [this](sendto& msg) -> caf::result<void> { return do_sendto(msg); },
      [this](close) { do_close(); },
      [this](abort) { do_abort(); },
      [this](pause_reading) {
        if (!closing_) user_paused_ = true;
      },
      [this](resume_reading) {
        if (closing_ || !user_paused_) return;
        user_paused_ = false;
        update_reading();
      },
      [this](set_write_buffer_limits& msg) -> caf::result<write_buffer_limits> {
        return set_limits(msg);
      },
      [this](get_write_buffer_size) -> uint64_t { return wq_bytes_; },
      [this](get_write_buffer_limits) { return limits(); },
      [this](get_extra_info) { return make_info(); },
      [this](get_status) { return status(); },
      [this](read_credit_returned) {
        credit_paused_ = false;
        update_reading();
      },
  };
}

void datagram_transport::on_exit() {
  *alive_ = false;
  begin_exit();
  if (sock_) {
    std::error_code ignored;
    sock_->close(ignored);
    sock_.reset();
  } else if (fd_ >= 0) {
    close_fd(fd_);
  }
  fd_ = -1;
  wq_.clear();
  wq_bytes_ = 0;
  proto_fast_ = nullptr;
  proto_ = nullptr;
  end_exit();
}

caf::invoke_message_result
datagram_transport::consume(caf::mailbox_element& x) {
  // An async `sendto` is the one message on the data path; skipping pattern
  // matching and response bookkeeping for it saves work per datagram (see
  // docs/datagrams.md for the callgrind figures). Everything else, requests
  // included, goes the normal way.
  auto& content = x.content();
  if (x.mid.is_async() && content.match_elements<shardwire::sendto>()) {
    // CAF's consume() sets the current element; the shortcut must too, or
    // handling_request() reads a freed one.
    current_element_ = &x;
    do_sendto(content.get_mutable_as<shardwire::sendto>(0));
    return caf::invoke_message_result::consumed;
  }
  return pinned::consume(x);
}

// -- reading ------------------------------------------------------------------

bool datagram_transport::should_read() const noexcept {
  return started_ && !user_paused_ && !credit_paused_ && !closing_ &&
         !lost_sent_;
}

void datagram_transport::update_reading() {
  if (!should_read() || read_armed_ || !sock_) return;
  read_armed_ = true;
  sock_->async_wait(asio::posix::descriptor_base::wait_read,
                    [this, alive = alive_](std::error_code ec) {
                      if (!*alive) return;
                      io_handler_scope guard{*this};
                      read_armed_ = false;
                      if (ec) return;
                      std::vector<datagram> out;
                      on_readable(out);
                      // Delivered after the busy mark: a co-located idle
                      // protocol runs at once and its `sendto` replies can
                      // take the fast path too.
                      guard.release_busy();
                      for (auto& msg : out) {
                        if (!*alive || lost_sent_ || !proto_) break;
                        if (proto_fast_ == nullptr ||
                            !try_deliver_now(*proto_fast_, msg))
                          send(proto_, std::move(msg));
                      }
                      if (*alive) finalize_if_quit();
                    });
}

void datagram_transport::on_readable(std::vector<datagram>& out) {
  if (!should_read()) return;
  auto batch = settings_.recv_batch;
  mutable_buffer chunk{recv_block_};
  auto cap = chunk.capacity();
  auto slots = std::max<size_t>(1, std::min(batch, cap / min_slot));
  auto slot = cap / slots;
  // Longer datagrams are truncated to max_size by the kernel (asyncio reads
  // with max_size the same way).
  auto max_size = std::max(settings_.max_size, size_t{1});
  if (slot > max_size) slot = max_size;
  auto tail = max_size - slot;
  scratch.prepare(chunk.data(), slots, slot, tail);
  int n;
  if (slots > 1) {
    do {
      n = ::recvmmsg(fd_, scratch.hdrs.data(), static_cast<unsigned>(slots),
                     MSG_DONTWAIT, nullptr);
    } while (n < 0 && errno == EINTR);
  } else {
    ssize_t got;
    do {
      got = ::recvmsg(fd_, &scratch.hdrs[0].msg_hdr, MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    if (got >= 0) scratch.hdrs[0].msg_len = static_cast<unsigned>(got);
    n = got < 0 ? -1 : 1;
  }
  if (n < 0) {
    int err = errno;
    if (!would_block(err)) {
      // asyncio: error_received, the endpoint stays open (ICMP errors on a
      // connected socket arrive here as ECONNREFUSED).
      send_error(err, "recvfrom");
    }
    update_reading();
    return;
  }
  auto count = static_cast<size_t>(n);
  // Next block: grow while the batch fills every slot, shrink when it used
  // a quarter or less (as stream_transport adapts its read size).
  auto max_block = std::max(min_block, batch * min_slot);
  if (count == slots && slots < batch && cap < max_block)
    recv_block_ = cap * 2;
  else if (count * 4 <= slots && cap > min_block)
    recv_block_ = cap / 2;
  // Read credit: the slices share the block, so they share its capacity
  // between them (the credit returns in full once all are gone); a copied
  // long datagram counts its own block.
  size_t sharing = 0;
  for (size_t i = 0; i < count; ++i) {
    auto len = scratch.hdrs[i].msg_len;
    if (len > 0 && len <= slot) ++sharing;
  }
  auto whole = std::move(chunk).freeze(cap);
  size_t share = sharing > 0 ? cap / sharing : 0;
  size_t rest = sharing > 0 ? cap - share * sharing : 0;
  out.reserve(count);
  size_t taken = 0;
  for (size_t i = 0; i < count; ++i) {
    auto& h = scratch.hdrs[i];
    auto len = std::min<size_t>(h.msg_len, max_size);
    auto* sa = static_cast<const sockaddr*>(h.msg_hdr.msg_name);
    endpoint peer = h.msg_hdr.msg_namelen > sizeof(sa_family_t)
                        ? to_endpoint(sa, h.msg_hdr.msg_namelen)
                        : endpoint{};
    if (settings_.connected && !peer.valid()) peer = remote_;
    buffer bytes;
    size_t weight = 0;
    if (len == 0) {
      // Empty datagram: an empty buffer, no storage.
    } else if (len <= slot) {
      bytes = whole.slice(i * slot, len);
      weight = share + rest;
      rest = 0;
    } else {
      mutable_buffer own{len};
      std::memcpy(own.data(), whole.data() + i * slot, slot);
      std::memcpy(own.data() + slot, scratch.overflow.data() + i * tail,
                  len - slot);
      bytes = std::move(own).freeze(len);
      weight = bytes.footprint();
    }
    taken += weight;
    out.push_back(datagram{std::move(bytes), std::move(peer),
                           read_ticket{credit_, weight}});
  }
  // One atomic add for the whole batch (nothing is delivered before this
  // function returns).
  credit_->take(taken);
  if (credit_->must_wait()) credit_paused_ = true;
  update_reading();
}

void datagram_transport::send_error(int err, const char* op) {
  if (lost_sent_ || !proto_) return;
  send(proto_, datagram_error{make_errno_error(err, op)});
}

// -- writing ------------------------------------------------------------------

caf::result<void> datagram_transport::do_sendto(sendto& msg) {
  auto reject = [&](caf::error err) -> caf::result<void> {
    // Only a request gets the error back: for a plain send, CAF 0.17 would
    // ship it as a stray response the sender cannot match.
    if (handling_request()) return err;
    log::error("sendto dropped: ", describe(err));
    return caf::unit;
  };
  if (lost_sent_ || closing_) {
    if (++dropped_ == 1 || dropped_ % 1000 == 0)
      log::warning("sendto on closed transport (", kind_, ") dropped (",
                   dropped_, " so far)");
    return caf::unit;
  }
  sockaddr_storage ss = {};
  socklen_t len = 0;
  if (settings_.connected) {
    if (msg.peer && *msg.peer != remote_)
      return reject(make_error(sw_errc::invalid_argument,
                               "Invalid address: must be None or " +
                                   to_string(remote_) + ", got " +
                                   to_string(*msg.peer)));
  } else {
    if (!msg.peer || !msg.peer->valid())
      return reject(
          make_error(sw_errc::invalid_argument,
                     "sendto on an unconnected endpoint needs a peer address"));
    auto addr = to_sockaddr(*msg.peer);
    if (!addr) return reject(std::move(addr.error()));
    ss = addr->first;
    len = addr->second;
  }
  if (wq_.empty()) {
    // Nothing queued: send now (as asyncio does); queue only on EAGAIN.
    auto err = send_one(msg.bytes,
                        len ? reinterpret_cast<sockaddr*>(&ss) : nullptr, len);
    if (err == 0) return caf::unit;
    if (!would_block(err)) {
      send_error(err, "sendto");
      return caf::unit;
    }
  }
  wq_bytes_ += msg.bytes.size();
  wq_.push_back(queued{std::move(msg.bytes), ss, len});
  arm_write();
  check_pause();
  return caf::unit;
}

int datagram_transport::send_one(const buffer& bytes, const sockaddr* sa,
                                 socklen_t len) {
  ssize_t n;
  do {
    n = ::sendto(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL, sa, len);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

void datagram_transport::arm_write() {
  if (write_armed_ || !sock_) return;
  write_armed_ = true;
  sock_->async_wait(asio::posix::descriptor_base::wait_write,
                    [this, alive = alive_](std::error_code ec) {
                      if (!*alive) return;
                      io_handler_scope guard{*this};
                      write_armed_ = false;
                      if (!ec && !lost_sent_) flush();
                      guard.release_busy();
                      finalize_if_quit();
                    });
}

int datagram_transport::send_batch() {
  auto n = std::min(wq_.size(), settings_.send_batch);
  auto& a = send_area;
  if (a.hdrs.size() < n) {
    a.hdrs.resize(n);
    a.iovs.resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    auto& q = wq_[i];
    a.iovs[i] = iovec{const_cast<std::byte*>(q.bytes.data()), q.bytes.size()};
    auto& h = a.hdrs[i];
    h = mmsghdr{};
    h.msg_hdr.msg_name = q.len ? &q.addr : nullptr;
    h.msg_hdr.msg_namelen = q.len;
    h.msg_hdr.msg_iov = &a.iovs[i];
    h.msg_hdr.msg_iovlen = 1;
  }
  int sent;
  do {
    sent =
        ::sendmmsg(fd_, a.hdrs.data(), static_cast<unsigned>(n), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return -errno;
  for (int i = 0; i < sent; ++i) {
    wq_bytes_ -= wq_.front().bytes.size();
    wq_.pop_front();
  }
  return sent;
}

void datagram_transport::flush() {
  while (!wq_.empty()) {
    if (settings_.send_batch > 1 && wq_.size() > 1) {
      // One system call for the queue's front (sendmmsg stops at the first
      // datagram that fails; the next round reports that one).
      auto r = send_batch();
      if (r > 0) continue;
      auto err = -r;
      if (would_block(err)) break;
      wq_bytes_ -= wq_.front().bytes.size();
      wq_.pop_front();
      send_error(err, "sendto");
      continue;
    }
    auto& q = wq_.front();
    auto err = send_one(
        q.bytes, q.len ? reinterpret_cast<const sockaddr*>(&q.addr) : nullptr,
        q.len);
    if (would_block(err)) break;
    wq_bytes_ -= q.bytes.size();
    wq_.pop_front();
    // asyncio: a failed datagram goes to error_received and is dropped.
    if (err != 0) send_error(err, "sendto");
  }
  check_resume();
  if (!wq_.empty())
    arm_write();
  else if (closing_)
    finish({});
}

} // namespace shardwire::detail
