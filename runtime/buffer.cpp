#include "runtime/buffer.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace shardwire {

namespace detail {

namespace {

// Size classes 4 KiB << k, k = 0..6 (4 KiB .. 256 KiB). Larger requests get a
// one-off allocation. Each thread caches a bounded number of blocks per class
// so an idle shard keeps little memory.
constexpr size_t min_class_bytes = 4096;
constexpr uint32_t num_classes = 7;
constexpr size_t max_cached_bytes_per_class = 1024 * 1024;

uint32_t class_of(size_t n) {
  size_t cap = min_class_bytes;
  for (uint32_t k = 1; k <= num_classes; ++k, cap <<= 1)
    if (n <= cap) return k;
  return 0;
}

size_t class_capacity(uint32_t k) {
  return min_class_bytes << (k - 1);
}

void destroy_plain(buffer_block* b) noexcept {
  b->~buffer_block();
  ::operator delete(static_cast<void*>(b));
}

buffer_block* make_plain(size_t capacity, uint32_t size_class) {
  void* mem = ::operator new(sizeof(buffer_block) + capacity);
  auto* b = new (mem) buffer_block;
  b->capacity = capacity;
  b->size_class = size_class;
  b->bytes = reinterpret_cast<std::byte*>(b + 1);
  b->destroy = destroy_plain;
  return b;
}

struct thread_pool {
  std::vector<buffer_block*> free[num_classes + 1];

  ~thread_pool() {
    for (auto& list : free)
      for (auto* b : list)
        destroy_plain(b);
  }

  buffer_block* take(uint32_t k) {
    auto& list = free[k];
    if (list.empty()) return make_plain(class_capacity(k), k);
    auto* b = list.back();
    list.pop_back();
    b->refs.store(1, std::memory_order_relaxed);
    return b;
  }

  void give(buffer_block* b) {
    auto& list = free[b->size_class];
    if (list.size() * b->capacity >= max_cached_bytes_per_class) {
      destroy_plain(b);
      return;
    }
    list.push_back(b);
  }
};

// Set to true once this thread's pool has been destroyed (thread exit); late
// releases then free directly.
thread_local bool pool_gone = false;

struct pool_holder {
  thread_pool pool;
  ~pool_holder() { pool_gone = true; }
};

thread_pool* local_pool() {
  if (pool_gone) return nullptr;
  thread_local pool_holder holder;
  return &holder.pool;
}

} // namespace

buffer_block* acquire_block(size_t n) {
  auto k = class_of(n);
  if (k == 0) return make_plain(n, 0);
  if (auto* pool = local_pool()) return pool->take(k);
  return make_plain(class_capacity(k), k);
}

void release(buffer_block* b) noexcept {
  if (b->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (b->size_class != 0) {
    if (auto* pool = local_pool()) {
      pool->give(b);
      return;
    }
  }
  b->destroy(b);
}

namespace {

template <class Container>
struct adopted_block : buffer_block {
  Container storage;
};

template <class Container>
buffer_block* adopt_block(Container&& c) {
  auto* b = new adopted_block<std::decay_t<Container>>;
  b->storage = std::forward<Container>(c);
  b->capacity = b->storage.capacity();
  b->bytes = reinterpret_cast<std::byte*>(b->storage.data());
  b->destroy = [](buffer_block* self) noexcept {
    delete static_cast<adopted_block<std::decay_t<Container>>*>(self);
  };
  return b;
}

} // namespace

} // namespace detail

// -- mutable_buffer -----------------------------------------------------------

mutable_buffer::mutable_buffer(size_t capacity)
    : block_(detail::acquire_block(capacity)) {}

mutable_buffer::mutable_buffer(mutable_buffer&& other) noexcept
    : block_(other.block_) {
  other.block_ = nullptr;
}

mutable_buffer& mutable_buffer::operator=(mutable_buffer&& other) noexcept {
  std::swap(block_, other.block_);
  return *this;
}

mutable_buffer::~mutable_buffer() {
  if (block_ != nullptr) detail::release(block_);
}

buffer mutable_buffer::freeze(size_t n) && {
  auto* b = block_;
  block_ = nullptr;
  return buffer{b, b->bytes, std::min(n, b->capacity)};
}

// -- buffer -------------------------------------------------------------------

buffer::buffer(const buffer& other) noexcept
    : block_(other.block_), data_(other.data_), size_(other.size_) {
  if (block_ != nullptr) detail::add_ref(block_);
}

buffer::buffer(buffer&& other) noexcept
    : block_(other.block_), data_(other.data_), size_(other.size_) {
  other.block_ = nullptr;
  other.data_ = nullptr;
  other.size_ = 0;
}

buffer& buffer::operator=(const buffer& other) noexcept {
  buffer tmp{other};
  *this = std::move(tmp);
  return *this;
}

buffer& buffer::operator=(buffer&& other) noexcept {
  if (this != &other) {
    if (block_ != nullptr) detail::release(block_);
    block_ = other.block_;
    data_ = other.data_;
    size_ = other.size_;
    other.block_ = nullptr;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

buffer::~buffer() {
  if (block_ != nullptr) detail::release(block_);
}

buffer buffer::copy_of(const void* p, size_t n) {
  if (n == 0) return {};
  mutable_buffer mb{n};
  std::memcpy(mb.data(), p, n);
  return std::move(mb).freeze(n);
}

buffer buffer::adopt(std::string s) {
  if (s.empty()) return {};
  auto n = s.size();
  auto* b = detail::adopt_block(std::move(s));
  return buffer{b, b->bytes, n};
}

buffer buffer::adopt(std::vector<std::byte> v) {
  if (v.empty()) return {};
  auto n = v.size();
  auto* b = detail::adopt_block(std::move(v));
  return buffer{b, b->bytes, n};
}

buffer buffer::adopt(std::vector<char> v) {
  if (v.empty()) return {};
  auto n = v.size();
  auto* b = detail::adopt_block(std::move(v));
  return buffer{b, b->bytes, n};
}

buffer buffer::slice(size_t offset, size_t length) const {
  if (offset >= size_) return {};
  auto n = std::min(length, size_ - offset);
  if (block_ != nullptr) detail::add_ref(block_);
  return buffer{block_, data_ + offset, n};
}

std::string to_string(const buffer& x) {
  std::string out = "buffer(";
  out += std::to_string(x.size());
  out += " bytes)";
  return out;
}

} // namespace shardwire
