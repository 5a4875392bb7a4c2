// Reference-counted byte buffers for the data path.
//
// A `buffer` is an immutable view of bytes whose storage is shared by
// reference count, so passing it from a socket read to a protocol actor and
// back into a write queue never copies the bytes. Storage comes either from a
// per-thread pool of fixed size classes (every shard is one thread, so this is
// a per-shard pool) or is adopted from a caller's std::string / std::vector
// without copying.
//
// Thread-safety: a buffer may be copied, read and destroyed on any thread;
// the reference count is atomic. The bytes never change once a buffer exists.
// A block released on a thread other than the one that allocated it goes to
// the releasing thread's pool (or is freed when that pool is full).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire {

namespace detail {

/// Header of every buffer storage block; the bytes follow or are adopted.
struct buffer_block {
  std::atomic<uint32_t> refs{1};
  uint32_t size_class = 0; // 0: not pooled
  size_t capacity = 0;
  std::byte* bytes = nullptr;
  void (*destroy)(buffer_block*) noexcept = nullptr;
};

inline void add_ref(buffer_block* b) noexcept {
  b->refs.fetch_add(1, std::memory_order_relaxed);
}

/// Drops one reference; the last one returns the block to a pool or frees it.
void release(buffer_block* b) noexcept;

/// Takes a block with at least `n` bytes of capacity from this thread's pool.
buffer_block* acquire_block(size_t n);

} // namespace detail

class buffer;

/// A freshly allocated, uniquely owned, writable block. Fill it, then turn it
/// into an immutable `buffer` with `freeze`.
class mutable_buffer {
public:
  /// Takes a block with at least `capacity` bytes from this thread's pool.
  explicit mutable_buffer(size_t capacity);
  mutable_buffer(mutable_buffer&& other) noexcept;
  mutable_buffer& operator=(mutable_buffer&& other) noexcept;
  mutable_buffer(const mutable_buffer&) = delete;
  mutable_buffer& operator=(const mutable_buffer&) = delete;
  ~mutable_buffer();

  std::byte* data() noexcept { return block_->bytes; }
  size_t capacity() const noexcept { return block_->capacity; }

  /// Publishes the first `n` bytes as an immutable buffer; `*this` is empty
  /// afterwards.
  buffer freeze(size_t n) &&;

private:
  detail::buffer_block* block_;
};

/// An immutable, reference-counted byte range. Copies share storage.
class buffer {
public:
  static constexpr size_t npos = static_cast<size_t>(-1);

  buffer() noexcept = default;
  buffer(const buffer& other) noexcept;
  buffer(buffer&& other) noexcept;
  buffer& operator=(const buffer& other) noexcept;
  buffer& operator=(buffer&& other) noexcept;
  ~buffer();

  /// Copies `n` bytes at `p` into a pooled block.
  static buffer copy_of(const void* p, size_t n);
  static buffer copy_of(std::string_view s) {
    return copy_of(s.data(), s.size());
  }

  /// Takes ownership of the string's storage; the bytes are not copied.
  static buffer adopt(std::string s);
  /// Takes ownership of the vector's storage; the bytes are not copied.
  static buffer adopt(std::vector<std::byte> v);
  static buffer adopt(std::vector<char> v);

  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Bytes of storage this buffer keeps alive (at least `size()`), for
  /// memory accounting.
  size_t footprint() const noexcept {
    return block_ != nullptr ? block_->capacity : 0;
  }

  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data_), size_};
  }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::string str() const { return std::string{view()}; }

  /// A view of `length` bytes from `offset`, sharing storage.
  buffer slice(size_t offset, size_t length = npos) const;

  /// Whether two buffers share storage (used to prove zero-copy in tests).
  bool shares_storage_with(const buffer& other) const noexcept {
    return block_ != nullptr && block_ == other.block_;
  }

  friend bool operator==(const buffer& x, const buffer& y) noexcept {
    return x.view() == y.view();
  }

private:
  friend class mutable_buffer;
  buffer(detail::buffer_block* b, const std::byte* p, size_t n) noexcept
      : block_(b), data_(p), size_(n) {}

  detail::buffer_block* block_ = nullptr;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

/// Renders the bytes for CAF's deep_to_string and test output.
std::string to_string(const buffer& x);

namespace detail {

/// Loads a buffer in the wire format of CAF's byte sequences (a length, then
/// the bytes), but grows the storage only as bytes actually arrive: the
/// length comes from a peer, and CAF's own path resizes to it before reading,
/// so six bytes claiming 4 GiB would allocate and zero 4 GiB.
template <class Deserializer>
typename Deserializer::result_type load_bytes_bounded(Deserializer& f,
                                                      buffer& x) {
  constexpr size_t step = 64 * 1024;
  size_t claimed = 0;
  if (auto err = f.begin_sequence(claimed)) return err;
  std::vector<char> tmp;
  tmp.reserve(claimed < step ? claimed : step);
  while (tmp.size() < claimed) {
    size_t at = tmp.size();
    size_t chunk = claimed - at < step ? claimed - at : step;
    tmp.resize(at + chunk);
    if (auto err = f.apply_raw(chunk, tmp.data() + at)) return err;
  }
  if (auto err = f.end_sequence()) return err;
  x = buffer::adopt(std::move(tmp));
  return {};
}

} // namespace detail

/// CAF inspection: serialized as its bytes, so a buffer can cross the
/// middleman; a deserialized buffer owns fresh storage. Loading allocates no
/// more than twice the bytes present, whatever length the input claims.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer& x) {
  if constexpr (Inspector::reads_state) {
    std::vector<char> tmp(reinterpret_cast<const char*>(x.data()),
                          reinterpret_cast<const char*>(x.data()) + x.size());
    return f(tmp);
  } else if constexpr (requires(size_t n, void* p) {
                         f.begin_sequence(n);
                         f.apply_raw(n, p);
                         f.end_sequence();
                       }) {
    return detail::load_bytes_bounded(f, x);
  } else {
    std::vector<char> tmp;
    auto on_exit = [&] { x = buffer::adopt(std::move(tmp)); };
    if constexpr (std::is_same_v<typename Inspector::result_type, void>) {
      f(tmp);
      on_exit();
    } else {
      auto res = f(tmp);
      on_exit();
      return res;
    }
  }
}

} // namespace shardwire
