// Reading from a plain socket in tests that watch what a peer (a proxy, a
// server under test) does to a connection: how many bytes, in how many
// reads, and how the connection ended.
#pragma once

#include "tests/support/fixtures.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <poll.h>
#include <string>
#include <sys/socket.h>

namespace shardwire::test {

/// What a client read: bytes, the number of recv calls that returned data,
/// and how it ended (EOF, an errno, or neither: deadline or enough bytes).
struct read_result {
  std::string bytes;
  size_t reads = 0;
  bool eof = false;
  int error = 0;
};

/// Reads until `want` bytes arrived (npos: until EOF or error), EOF, an
/// error or the deadline.
inline read_result read_from(int fd, size_t want = std::string::npos,
                             std::chrono::milliseconds timeout = deadline) {
  using std::chrono::steady_clock;
  read_result r;
  auto until = steady_clock::now() + timeout;
  char buf[65536];
  while (want == std::string::npos || r.bytes.size() < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    auto cap = sizeof(buf);
    if (want != std::string::npos) cap = std::min(cap, want - r.bytes.size());
    auto n = ::recv(fd, buf, cap, 0);
    if (n > 0) {
      r.bytes.append(buf, static_cast<size_t>(n));
      ++r.reads;
    } else if (n == 0) {
      r.eof = true;
      break;
    } else if (errno != EINTR && errno != EAGAIN) {
      r.error = errno;
      break;
    }
  }
  return r;
}

} // namespace shardwire::test
