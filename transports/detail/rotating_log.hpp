// A log file with size rotation, as supervisord's stdout_logfile with
// stdout_logfile_maxbytes and stdout_logfile_backups: `path` holds the
// newest output, `path.1` the file before it, up to `path.<backups>`.
// Private to transports/ (used by the process child).
//
// Guarantees:
//   - bytes are appended in the order written; an existing file is
//     continued, not truncated;
//   - no file holds more than `max_bytes`: a write that does not fit puts
//     what fits, up to its last newline, in the current file, rotates
//     (path.N-1 -> path.N, ..., path -> path.1; the oldest is removed) and
//     goes on in the fresh file, so lines stay whole unless one is longer
//     than `max_bytes` (it is then cut there);
//   - `backups` = 0 keeps no old file: the file is emptied instead;
//     `max_bytes` = 0 never rotates;
//   - writes are plain blocking write(2) calls to a regular file (the page
//     cache), made on the caller's thread.
#pragma once

#include <caf/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace shardwire::detail {

class rotating_log {
public:
  rotating_log() = default;
  rotating_log(const rotating_log&) = delete;
  rotating_log& operator=(const rotating_log&) = delete;
  ~rotating_log() { close(); }

  /// Opens (creates) `path` for appending. Errors: errno, naming the path.
  caf::error open(std::string path, uint64_t max_bytes, uint32_t backups);

  /// Appends `bytes`, rotating first if needed. Errors: errno of the write
  /// or rotation (the file stays open; later writes are tried again).
  caf::error write(std::string_view bytes);

  bool is_open() const noexcept { return fd_ >= 0; }
  uint64_t size() const noexcept { return size_; }
  void close() noexcept;

private:
  caf::error rotate();
  caf::error write_all(std::string_view bytes);
  caf::error reopen(bool truncate);

  int fd_ = -1;
  std::string path_;
  uint64_t max_bytes_ = 0;
  uint32_t backups_ = 0;
  uint64_t size_ = 0;
};

} // namespace shardwire::detail
