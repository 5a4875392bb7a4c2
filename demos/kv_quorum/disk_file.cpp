#include "demos/kv_quorum/disk_file.hpp"

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kv_quorum {

namespace {

std::string os_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

} // namespace

std::unique_ptr<disk_file> disk_file::open(const std::string& path, disk& into,
                                           std::string& error) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = os_error("cannot open", path);
    return nullptr;
  }
  std::unique_ptr<disk_file> f{new disk_file(fd, path)};
  std::string content;
  char buf[64 * 1024];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = os_error("cannot read", path);
      return nullptr;
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  std::string_view rest = content;
  size_t line_no = 0;
  size_t complete = 0; // bytes of complete lines
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      f->torn_ = true; // never fsync'd whole: never acknowledged
      break;
    }
    ++line_no;
    auto m = parse(rest.substr(0, nl));
    if (!m || m->kind != message::store || !m->version.value) {
      error = "'" + path + "' line " + std::to_string(line_no) +
              " is not a stored version (corrupt file?)";
      return nullptr;
    }
    into.store(m->key, m->version);
    ++f->replayed_;
    complete += nl + 1;
    rest.remove_prefix(nl + 1);
  }
  if (f->torn_ && (::ftruncate(fd, static_cast<off_t>(complete)) != 0 ||
                   ::fsync(fd) != 0)) {
    error = os_error("cannot cut the torn last line of", path);
    return nullptr;
  }
  f->size_ = ::lseek(fd, 0, SEEK_END);
  if (f->size_ < 0) {
    error = os_error("cannot seek", path);
    return nullptr;
  }
  return f;
}

disk_file::~disk_file() {
  ::close(fd_);
}

void disk_file::append(const std::string& key, const versioned& v) {
  message m;
  m.kind = message::store;
  m.key = key;
  m.version = v;
  auto line = encode(m);
  std::string_view rest = line;
  auto fail = [&](const char* what) {
    int err = errno;
    // Cut a partly written line, so the next append starts a line.
    if (::ftruncate(fd_, size_) == 0) (void)::lseek(fd_, size_, SEEK_SET);
    throw std::system_error(err, std::generic_category(),
                            std::string{"kv_quorum: "} + what + " '" + path_ +
                                "'");
  };
  while (!rest.empty()) {
    auto n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("writing");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  size_ += static_cast<off_t>(line.size());
}

void disk_file::sync() {
  // fdatasync: the data and the file size, which is all a replay needs.
  if (::fdatasync(fd_) != 0)
    throw std::system_error(errno, std::generic_category(),
                            "kv_quorum: fsync of '" + path_ + "'");
}

void disk_file::attach(disk& d) {
  d.persist = [this](const std::string& key, const versioned& v) {
    append(key, v);
  };
  d.sync = [this] { sync(); };
}

} // namespace kv_quorum
