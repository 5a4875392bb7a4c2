// Zero-copy sharing, pooling, cross-thread release and CAF serialization of
// runtime/buffer.hpp.
#include "runtime/buffer.hpp"

#include "tests/support/fixtures.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>

#include <sys/resource.h>

#include <thread>
#include <vector>

using namespace shardwire;
using namespace shardwire::test;

TEST_CASE("copies of a buffer share storage") {
  auto b = buffer::copy_of("hello world");
  REQUIRE(b.size() == 11);
  buffer c = b;
  CHECK(c.shares_storage_with(b));
  CHECK(c.data() == b.data());
  CHECK(c == b);
  buffer d;
  d = c;
  CHECK(d.shares_storage_with(b));
  buffer e = std::move(d);
  CHECK(e.shares_storage_with(b));
  CHECK(d.empty());
  CHECK_FALSE(d.shares_storage_with(b));
  // copy_of makes new storage; equal bytes are still equal.
  auto f = buffer::copy_of("hello world");
  CHECK_FALSE(f.shares_storage_with(b));
  CHECK(f == b);
  // Empty buffers share nothing.
  CHECK_FALSE(buffer{}.shares_storage_with(buffer{}));
  CHECK(buffer::copy_of("").empty());
}

TEST_CASE("slices share storage and outlive the original") {
  auto text = std::string{"0123456789abcdef"};
  buffer s;
  {
    auto b = buffer::copy_of(text);
    s = b.slice(4, 6);
    CHECK(s.shares_storage_with(b));
    CHECK(s.data() == b.data() + 4);
    CHECK(s.view() == "456789");
    auto rest = b.slice(10);
    CHECK(rest.view() == "abcdef");
    CHECK(rest.shares_storage_with(b));
    CHECK(b.slice(3, 1000).view() == text.substr(3));
    CHECK(b.slice(16).empty());
    CHECK(b.slice(100, 2).empty());
    auto nested = s.slice(2, 2);
    CHECK(nested.view() == "67");
    CHECK(nested.shares_storage_with(b));
  }
  // The original is gone; the slice keeps the storage alive.
  CHECK(s.view() == "456789");
  CHECK(s.str() == "456789");
}

TEST_CASE("adopting a string or vector does not copy the bytes") {
  std::string big(1 << 20, 'x');
  big[12345] = 'y';
  const char* heap = big.data();
  auto b = buffer::adopt(std::move(big));
  CHECK(reinterpret_cast<const char*>(b.data()) == heap);
  CHECK(b.size() == size_t{1} << 20);
  CHECK(b.view()[12345] == 'y');
  CHECK(b.footprint() >= b.size());
  auto copy = b;
  CHECK(copy.shares_storage_with(b));

  std::vector<char> v(100000, 'v');
  const char* vheap = v.data();
  auto bv = buffer::adopt(std::move(v));
  CHECK(reinterpret_cast<const char*>(bv.data()) == vheap);
  CHECK(bv.size() == 100000);

  std::vector<std::byte> vb(5000, std::byte{7});
  const std::byte* bheap = vb.data();
  auto bb = buffer::adopt(std::move(vb));
  CHECK(bb.data() == bheap);
  CHECK(bb.size() == 5000);

  CHECK(buffer::adopt(std::string{}).empty());
  CHECK(buffer::adopt(std::vector<char>{}).empty());
}

TEST_CASE("mutable_buffer freezes into an immutable buffer") {
  mutable_buffer mb{1000};
  REQUIRE(mb.capacity() >= 1000);
  std::memcpy(mb.data(), "abc", 3);
  auto p = mb.data();
  auto b = std::move(mb).freeze(3);
  CHECK(b.view() == "abc");
  CHECK(b.data() == p);
  CHECK(b.footprint() == 4096); // smallest size class
}

TEST_CASE("the per-thread pool reuses released blocks") {
  // A fresh thread has a fresh pool, so nothing else interferes.
  std::thread t{[] {
    const std::byte* first = nullptr;
    {
      auto b = buffer::copy_of(std::string(1000, 'a'));
      first = b.data();
      CHECK(b.footprint() == 4096);
    }
    {
      // Same size class: the block just released comes back.
      auto b = buffer::copy_of(std::string(3000, 'b'));
      CHECK(b.data() == first);
      CHECK(b.view() == std::string(3000, 'b'));
      // A live block is not handed out twice.
      auto c = buffer::copy_of(std::string(3000, 'c'));
      CHECK(c.data() != b.data());
      CHECK(b.view() == std::string(3000, 'b'));
    }
    {
      // A different size class does not take it.
      auto b = buffer::copy_of(std::string(10000, 'd'));
      CHECK(b.footprint() == 16384);
      CHECK(b.data() != first);
    }
  }};
  t.join();
}

TEST_CASE("a buffer may be released on another thread") {
  // Allocated on one thread, released on this one: the block joins this
  // thread's pool.
  buffer moved;
  const std::byte* p = nullptr;
  std::thread producer{[&] {
    moved = buffer::copy_of(std::string(20000, 'p')); // 32 KiB class
    p = moved.data();
  }};
  producer.join();
  std::thread consumer{[&] {
    auto local = std::move(moved);
    CHECK(local.view() == std::string(20000, 'p'));
    local = buffer{}; // released here, on a thread that did not allocate it
    auto again = buffer::copy_of(std::string(20000, 'q'));
    CHECK(again.data() == p);
  }};
  consumer.join();

  // Many threads copying and dropping one buffer at once: the count stays
  // right (ASan/LSan report a double free or a leak otherwise).
  auto shared = buffer::copy_of(std::string(50000, 's'));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([shared] {
      for (int k = 0; k < 10000; ++k) {
        buffer c = shared;
        auto s = c.slice(k % 100, 10);
        if (s.size() != 10) std::abort();
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(shared.view() == std::string(50000, 's'));
}

TEST_CASE("buffers survive a CAF binary serialization round trip") {
  runtime_fixture fx;
  auto& sys = fx.rt->system();
  for (size_t n : {size_t{0}, size_t{1}, size_t{5000}, size_t{300000}}) {
    std::string text(n, '\0');
    for (size_t i = 0; i < n; ++i)
      text[i] = static_cast<char>(i * 31 + 7);
    auto b = buffer::copy_of(text);
    std::vector<char> bytes;
    caf::binary_serializer sink{sys, bytes};
    REQUIRE_FALSE(sink(b));
    buffer out;
    caf::binary_deserializer source{sys, bytes};
    REQUIRE_FALSE(source(out));
    CHECK(out.size() == n);
    CHECK(out.view() == text);
    CHECK((n == 0 || !out.shares_storage_with(b))); // fresh storage
  }
  // As an element of a CAF message (uses the registered type name).
  auto msg = caf::make_message(buffer::copy_of("in a message"));
  std::vector<char> bytes;
  caf::binary_serializer sink{sys, bytes};
  REQUIRE_FALSE(sink(msg));
  caf::message out;
  caf::binary_deserializer source{sys, bytes};
  REQUIRE_FALSE(source(out));
  REQUIRE(out.match_elements<buffer>());
  CHECK(out.get_as<buffer>(0).view() == "in a message");
}

namespace {

long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

} // namespace

TEST_CASE("a deserialized buffer never allocates the length its input claims") {
  // A remote `data` of a few bytes claiming 4 GiB: CAF's byte-sequence path
  // would resize to the claim first (fuzz finding 1, tests/fuzz/README.md).
  runtime_fixture fx;
  auto& sys = fx.rt->system();
  for (size_t claim : {size_t{0xFFFFFFFF}, size_t{1} << 20, size_t{70000}}) {
    std::vector<char> bytes;
    caf::binary_serializer sink{sys, bytes};
    REQUIRE_FALSE(sink.begin_sequence(claim));
    bytes.insert(bytes.end(), {'a', 'b', 'c', 'd', 'e', 'f'});
    auto before = peak_rss_kib();
    buffer out = buffer::copy_of("untouched");
    caf::binary_deserializer source{sys, bytes};
    CHECK(source(out)); // refused: the bytes are not there
    CHECK(out.view() == "untouched");
    CHECK(peak_rss_kib() - before < 64 * 1024); // KiB: far below the claim
  }
}
