#include "runtime/systemd_notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardwire::sd {

namespace {

// A positive decimal number, or nullopt.
std::optional<unsigned long long> parse_positive(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  auto value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || value == 0 || *text == '-')
    return std::nullopt;
  return value;
}

} // namespace

bool notify(std::string_view state) noexcept {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr) return false;
  size_t len = std::strlen(env);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A path or an abstract name ('@'), nothing else (sd_notify's rule).
  if (len < 2 || len > sizeof addr.sun_path || (env[0] != '/' && env[0] != '@'))
    return false;
  std::memcpy(addr.sun_path, env, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  auto sent =
      ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&addr),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

std::optional<std::chrono::microseconds> watchdog_interval() noexcept {
  auto usec = parse_positive(std::getenv("WATCHDOG_USEC"));
  if (!usec) return std::nullopt;
  if (const char* pid = std::getenv("WATCHDOG_PID")) {
    auto p = parse_positive(pid);
    if (!p || *p != static_cast<unsigned long long>(::getpid()))
      return std::nullopt;
  }
  return std::chrono::microseconds{static_cast<int64_t>(*usec)};
}

} // namespace shardwire::sd
