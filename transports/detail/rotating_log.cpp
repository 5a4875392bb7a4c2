#include "transports/detail/rotating_log.hpp"

#include "actors/errors.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardwire::detail {

caf::error rotating_log::open(std::string path, uint64_t max_bytes,
                              uint32_t backups) {
  close();
  path_ = std::move(path);
  max_bytes_ = max_bytes;
  backups_ = backups;
  return reopen(false);
}

caf::error rotating_log::reopen(bool truncate) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(),
               O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
                   (truncate ? O_TRUNC : 0),
               0644);
  if (fd_ < 0) return make_errno_error(errno, "log file " + path_);
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return {};
}

caf::error rotating_log::rotate() {
  if (backups_ > 0) {
    // Oldest first, so no rename overwrites a file still to be moved.
    for (uint32_t i = backups_; i > 1; --i) {
      auto from = path_ + "." + std::to_string(i - 1);
      auto to = path_ + "." + std::to_string(i);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
        return make_errno_error(errno, "log file rotation " + from);
    }
    auto first = path_ + ".1";
    if (::rename(path_.c_str(), first.c_str()) != 0)
      return make_errno_error(errno, "log file rotation " + path_);
  }
  return reopen(true);
}

caf::error rotating_log::write(std::string_view bytes) {
  if (fd_ < 0) {
    if (path_.empty()) return make_error(sw_errc::closed, "log file");
    if (auto err = reopen(false)) return err; // a failed rotation's reopen
  }
  while (!bytes.empty()) {
    auto room = size_ < max_bytes_ ? max_bytes_ - size_ : 0;
    if (max_bytes_ == 0 || bytes.size() <= room) return write_all(bytes);
    // Does not fit: what fits up to its last newline goes here; a line
    // longer than a whole file is cut at max_bytes.
    auto cut =
        room > 0 ? bytes.substr(0, room).rfind('\n') : std::string_view::npos;
    size_t here = cut != std::string_view::npos ? cut + 1
                  : size_ == 0                  ? room
                                                : 0;
    if (here > 0) {
      if (auto err = write_all(bytes.substr(0, here))) return err;
      bytes.remove_prefix(here);
    }
    if (auto err = rotate()) return err;
  }
  return {};
}

caf::error rotating_log::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_errno_error(errno, "log file " + path_);
    }
    size_ += static_cast<uint64_t>(n);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

void rotating_log::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  path_.clear();
}

} // namespace shardwire::detail
