// A replica's durable storage as a file: one line per kept version, in the
// replica protocol's store format (wire.hpp, `S 0 <key> <counter> <writer>
// <value>`), appended and fsync'd before the store is acknowledged (one
// fsync per batch: disk's group commit, replica.hpp), and replayed into a
// `disk` at start.
//
// Replay keeps the newest version of each key (disk::store's rule), so the
// order of lines does not matter. A last line without its '\n' is a write
// torn by a crash: it was never fsync'd, hence never acknowledged; replay
// ignores it and cuts it off the file, so the next append starts on a
// line of its own. A malformed complete line is corruption: `open` fails.
// The file only grows (no compaction).
//
// Threads: not thread-safe; one thread uses a disk_file and the disk it
// feeds (`kv_cluster replica` runs one shard, process.hpp). `append`
// blocks that thread for the write, `sync` for the fsync.
#pragma once

#include "demos/kv_quorum/replica.hpp"

#include <memory>
#include <string>

#include <sys/types.h>

namespace kv_quorum {

class disk_file {
public:
  /// Opens (creating it if missing) `path`, replays it into `into` and cuts
  /// off a torn last line (call it before `attach`: replaying must not
  /// append). Nothing and `error` set (naming the file and the
  /// line) on failure.
  static std::unique_ptr<disk_file> open(const std::string& path, disk& into,
                                         std::string& error);
  ~disk_file();

  disk_file(const disk_file&) = delete;
  disk_file& operator=(const disk_file&) = delete;

  /// Appends `v` of `key` (written, not yet durable: `sync`). Throws
  /// std::system_error if the write failed (the partly written line is
  /// cut off; the version must not be acknowledged).
  void append(const std::string& key, const versioned& v);

  /// Makes every appended line durable (fdatasync). Throws
  /// std::system_error if it failed (nothing appended since the last
  /// `sync` may be acknowledged).
  void sync();

  /// Complete lines replayed by `open`, and whether it cut a torn one.
  size_t replayed() const noexcept { return replayed_; }
  bool cut_torn_line() const noexcept { return torn_; }

  /// Makes `d.persist` append here and `d.sync` sync here; `this` must
  /// outlive `d`'s stores.
  void attach(disk& d);

private:
  disk_file(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;
  off_t size_ = 0; // bytes of complete lines
  size_t replayed_ = 0;
  bool torn_ = false;
};

} // namespace kv_quorum
