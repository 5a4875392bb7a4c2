#include "transports/detail/fd_datagram_backend.hpp"

#include "actors/errors.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/watch_fd.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardwire::detail {

namespace {

// Receiving without a copy: one recvmmsg fills `slots` equal slots of one
// pooled block, and each datagram becomes a slice of it. A slot is at least
// `min_slot` bytes (an Ethernet-MTU datagram fits); each slot's iovec
// continues into a per-thread overflow area, so a longer datagram (up to
// max_size) still arrives whole, and only such a datagram is copied into a
// right-sized buffer of its own.
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

int normalized(int err) {
  return err == EWOULDBLOCK ? transport_core::io_result::would_block : err;
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

fd_datagram_backend::fd_datagram_backend(int fd, std::string kind)
    : kind_(std::move(kind)), fd_(fd) {
}

caf::error fd_datagram_backend::start(transport_core::io_owner& owner,
                                      shard& home,
                                      const datagram_settings& settings) {
  owner_ = &owner;
  connected_ = settings.connected;
  if (auto err = watch_fd(watch_, home, fd_, *this)) {
    stop();
    return err;
  }
  return {};
}

void fd_datagram_backend::stop() noexcept {
  unwatch_and_close(watch_, fd_);
}

endpoint fd_datagram_backend::remote() const {
  return fd_ >= 0 ? remote_endpoint(fd_) : endpoint{};
}

caf::expected<fd_datagram_backend::address>
fd_datagram_backend::resolve(const endpoint& peer) const {
  auto sa = to_sockaddr(peer);
  if (!sa) return std::move(sa.error());
  return address{sa->first, sa->second};
}

void fd_datagram_backend::describe(transport_info& info) const {
  info.kind = kind_;
  if (fd_ >= 0) {
    if (connected_) info.peername = remote_endpoint(fd_);
    info.sockname = local_endpoint(fd_);
  }
  info.fd = fd_;
}

int fd_datagram_backend::receive(
    std::vector<transport_core::received_datagram>& out,
    const datagram_settings& settings) {
  auto batch = settings.recv_batch;
  mutable_buffer chunk{recv_block_};
  auto cap = chunk.capacity();
  auto slots = std::max<size_t>(1, std::min(batch, cap / min_slot));
  auto slot = cap / slots;
  // Longer datagrams are truncated to max_size by the kernel (asyncio reads
  // with max_size the same way).
  auto max_size = std::max(settings.max_size, size_t{1});
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
    int err = normalized(errno);
    if (err == transport_core::io_result::would_block)
      watch_.clear_ready(fd_read); // drained: wait for the next edge
    return err;
  }
  auto count = static_cast<size_t>(n);
  // Fewer than asked: the socket is drained for now.
  if (count < slots) watch_.clear_ready(fd_read);
  // Next block: grow while the batch fills every slot, shrink when it used
  // a quarter or less (as the stream core adapts its read size).
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
  for (size_t i = 0; i < count; ++i) {
    auto& h = scratch.hdrs[i];
    auto len = std::min<size_t>(h.msg_len, max_size);
    auto* sa = static_cast<const sockaddr*>(h.msg_hdr.msg_name);
    transport_core::received_datagram r;
    if (h.msg_hdr.msg_namelen > sizeof(sa_family_t))
      r.peer = to_endpoint(sa, h.msg_hdr.msg_namelen);
    if (len == 0) {
      // Empty datagram: an empty buffer, no storage.
    } else if (len <= slot) {
      r.bytes = whole.slice(i * slot, len);
      r.weight = share + rest;
      rest = 0;
    } else {
      mutable_buffer own{len};
      std::memcpy(own.data(), whole.data() + i * slot, slot);
      std::memcpy(own.data() + slot, scratch.overflow.data() + i * tail,
                  len - slot);
      r.bytes = std::move(own).freeze(len);
      r.weight = r.bytes.footprint();
    }
    out.push_back(std::move(r));
  }
  return 0;
}

int fd_datagram_backend::send(const buffer& bytes, const address* to) {
  ssize_t n;
  do {
    n = ::sendto(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL,
                 to != nullptr ? reinterpret_cast<const sockaddr*>(&to->ss)
                               : nullptr,
                 to != nullptr ? to->len : 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return 0;
  int err = normalized(errno);
  if (err == transport_core::io_result::would_block)
    watch_.clear_ready(fd_write); // full: wait for the next edge
  return err;
}

int fd_datagram_backend::send_front(const std::deque<queued>& q, size_t n) {
  auto& a = send_area;
  if (a.hdrs.size() < n) {
    a.hdrs.resize(n);
    a.iovs.resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    auto& d = q[i];
    a.iovs[i] = iovec{const_cast<std::byte*>(d.bytes.data()), d.bytes.size()};
    auto& h = a.hdrs[i];
    h = mmsghdr{};
    h.msg_hdr.msg_name =
        d.has_address ? const_cast<sockaddr_storage*>(&d.to.ss) : nullptr;
    h.msg_hdr.msg_namelen = d.has_address ? d.to.len : 0;
    h.msg_hdr.msg_iov = &a.iovs[i];
    h.msg_hdr.msg_iovlen = 1;
  }
  int sent;
  do {
    sent =
        ::sendmmsg(fd_, a.hdrs.data(), static_cast<unsigned>(n), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent >= 0) return sent;
  int err = normalized(errno);
  if (err == transport_core::io_result::would_block)
    watch_.clear_ready(fd_write);
  return -err;
}

} // namespace shardwire::detail
