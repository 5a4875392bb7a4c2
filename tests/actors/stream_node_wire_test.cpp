// actors/stream_node_wire.hpp: every frame kind round-trips; truncated,
// oversize and garbage input is refused with an error, never a crash.
#include "actors/stream_node_wire.hpp"

#include "actors/errors.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/duration.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <random>

using namespace shardwire;

namespace {

std::span<const std::byte> as_bytes(const std::vector<char>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

std::vector<node_frame> all_kinds() {
  std::vector<node_frame> out;
  node_frame lookup;
  lookup.kind = frame_kind::lookup;
  lookup.version = 1;
  lookup.name = "kv";
  lookup.interface = {"get", "put"};
  out.push_back(lookup);
  node_frame entry;
  entry.kind = frame_kind::entry;
  entry.version = 1;
  entry.interface = {"caf::replies_to<get>::with<std::string>"};
  out.push_back(entry);
  node_frame missing;
  missing.kind = frame_kind::entry;
  missing.version = 1;
  missing.error = make_error(sw_errc::unknown_service, "kv");
  out.push_back(missing);
  node_frame request;
  request.kind = frame_kind::request;
  request.id = 0x0102030405060708;
  request.one_way = true;
  request.payload = {'a', '\0', 'b'};
  out.push_back(request);
  node_frame response;
  response.kind = frame_kind::response;
  response.id = 42;
  response.payload = {'x', 'y'};
  out.push_back(response);
  node_frame failed;
  failed.kind = frame_kind::response;
  failed.id = 43;
  failed.failed = true;
  failed.error = make_error(sw_errc::node_unavailable, "gone");
  out.push_back(failed);
  node_frame ping;
  ping.kind = frame_kind::ping;
  ping.id = 7;
  out.push_back(ping);
  node_frame pong;
  pong.kind = frame_kind::pong;
  pong.id = 7;
  out.push_back(pong);
  node_frame down;
  down.kind = frame_kind::down;
  down.error = make_error(sw_errc::process_failed, "exit 3");
  out.push_back(down);
  return out;
}

bool same(const node_frame& x, const node_frame& y) {
  return x.kind == y.kind && x.id == y.id && x.version == y.version &&
         x.name == y.name && x.interface == y.interface &&
         x.one_way == y.one_way && x.failed == y.failed &&
         x.payload == y.payload && describe(x.error) == describe(y.error) &&
         static_cast<bool>(x.error) == static_cast<bool>(y.error) &&
         (!x.error || (x.error.code() == y.error.code() &&
                       x.error.category() == y.error.category()));
}

} // namespace

TEST_CASE("every frame kind round-trips, in one chunk and byte by byte") {
  auto frames = all_kinds();
  std::vector<char> bytes;
  for (auto& f : frames)
    REQUIRE_FALSE(encode_frame(f, bytes));
  SECTION("one chunk") {
    frame_decoder dec;
    dec.feed(as_bytes(bytes));
    for (auto& f : frames) {
      auto got = dec.next();
      REQUIRE(got);
      REQUIRE(*got);
      CHECK(same(**got, f));
    }
    auto end = dec.next();
    REQUIRE(end);
    CHECK_FALSE(*end);
    CHECK(dec.buffered() == 0);
  }
  SECTION("byte by byte") {
    frame_decoder dec;
    size_t i = 0;
    for (char c : bytes) {
      std::vector<char> one{c};
      dec.feed(as_bytes(one));
      auto got = dec.next();
      REQUIRE(got);
      if (*got) {
        REQUIRE(i < frames.size());
        CHECK(same(**got, frames[i]));
        ++i;
      }
    }
    CHECK(i == frames.size());
  }
}

TEST_CASE("a message round-trips through its system's serializer; actor "
          "handles are refused") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto msg = caf::make_message(caf::atom("get"), std::string{"key"}, 7);
  auto bytes = encode_message(sys, msg);
  REQUIRE(bytes);
  auto back = decode_message(sys, *bytes);
  REQUIRE(back);
  REQUIRE((back->match_elements<caf::atom_value, std::string, int>()));
  CHECK(back->get_as<std::string>(1) == "key");
  CHECK(back->get_as<int>(2) == 7);
  // Trailing bytes and truncations are errors.
  auto longer = *bytes;
  longer.push_back('!');
  CHECK_FALSE(decode_message(sys, longer));
  for (size_t n = 0; n < bytes->size(); ++n) {
    std::vector<char> cut(bytes->begin(),
                          bytes->begin() + static_cast<ptrdiff_t>(n));
    CHECK_FALSE(decode_message(sys, cut));
  }
  auto dummy = sys.spawn(
      [](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
  auto with_handle = encode_message(sys, caf::make_message(dummy, 1));
  REQUIRE_FALSE(with_handle);
  CHECK(is(with_handle.error(), sw_errc::not_supported));
  caf::anon_send_exit(dummy, caf::exit_reason::kill);
  // Nor are they taken from a peer that writes one (its own actor's, as
  // CAF's serializer writes it).
  std::vector<char> forged;
  {
    caf::actor_system_config peer_cfg;
    caf::actor_system peer{peer_cfg};
    auto theirs = peer.spawn(
        [](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
    caf::binary_serializer sink{peer, forged};
    auto handle_msg = caf::make_message(theirs, 1);
    REQUIRE_FALSE(sink(handle_msg));
    caf::anon_send_exit(theirs, caf::exit_reason::kill);
  }
  CHECK_FALSE(decode_message(sys, forged));
}

TEST_CASE("truncated frames wait for more bytes; malformed bodies are "
          "refused") {
  auto frames = all_kinds();
  for (auto& f : frames) {
    std::vector<char> bytes;
    REQUIRE_FALSE(encode_frame(f, bytes));
    CAPTURE(to_string(f.kind));
    // A prefix of a frame is not a frame yet.
    for (size_t n = 0; n < bytes.size(); ++n) {
      frame_decoder dec;
      std::vector<char> cut(bytes.begin(),
                            bytes.begin() + static_cast<ptrdiff_t>(n));
      dec.feed(as_bytes(cut));
      auto got = dec.next();
      REQUIRE(got);
      CHECK_FALSE(*got);
    }
    // A body cut short (with a length prefix that says so) is malformed,
    // except where the cut falls at the end of a to-the-end payload.
    std::span<const char> body{bytes.data() + 4, bytes.size() - 4};
    for (size_t n = 0; n < body.size(); ++n) {
      auto got = decode_frame_body(body.first(n));
      if (got) {
        CHECK(
            (f.kind == frame_kind::request || f.kind == frame_kind::response));
      } else {
        CHECK(is(got.error(), sw_errc::incompatible_node));
      }
    }
    // A trailing byte is malformed for kinds without a to-the-end payload.
    if (f.kind != frame_kind::request &&
        !(f.kind == frame_kind::response && !f.failed)) {
      std::vector<char> more(body.begin(), body.end());
      more.push_back(0);
      CHECK_FALSE(decode_frame_body(more));
    }
  }
  // Unknown kinds and bad flags.
  CHECK_FALSE(decode_frame_body(std::vector<char>{}));
  CHECK_FALSE(decode_frame_body(std::vector<char>{char(99)}));
  std::vector<char> bad_flag{3, 0, 0, 0, 0, 0, 0, 0, 1, 2};
  CHECK_FALSE(decode_frame_body(bad_flag));
  // A name list that claims more entries than bytes exist.
  std::vector<char> lying{1, 0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0x7f, 0x7f, 0x7f};
  CHECK_FALSE(decode_frame_body(lying));
}

TEST_CASE("an oversize frame is refused from its length prefix, and the "
          "decoder stays failed") {
  frame_decoder dec{1024};
  std::vector<char> prefix{0, 0, 0x04, 0x01}; // 1025 bytes
  dec.feed(as_bytes(prefix));
  auto got = dec.next();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), sw_errc::incompatible_node));
  CHECK(describe(got.error()).find("oversize") != std::string::npos);
  std::vector<char> ping;
  node_frame f;
  f.kind = frame_kind::ping;
  REQUIRE_FALSE(encode_frame(f, ping));
  dec.feed(as_bytes(ping));
  CHECK_FALSE(dec.next());
  // The default bound is 16 MiB; encoding refuses past it too.
  frame_decoder big;
  std::vector<char> huge{0x01, 0, 0, 0x01};
  big.feed(as_bytes(huge));
  CHECK_FALSE(big.next());
  node_frame request;
  request.kind = frame_kind::request;
  request.payload.resize(2000);
  std::vector<char> out;
  CHECK(is(encode_frame(request, out, 1024), sw_errc::invalid_argument));
  CHECK(out.empty());
}

TEST_CASE("garbage never crashes the decoder") {
  std::mt19937_64 rng{1234};
  for (int round = 0; round < 2000; ++round) {
    std::vector<char> junk(rng() % 64);
    for (auto& c : junk)
      c = static_cast<char>(rng());
    // Keep lengths small half of the time, so bodies get parsed.
    if (junk.size() >= 4 && round % 2 == 0) {
      junk[0] = junk[1] = junk[2] = 0;
      junk[3] = static_cast<char>(junk.size() - 4);
    }
    frame_decoder dec{4096};
    dec.feed(as_bytes(junk));
    for (int i = 0; i < 100; ++i) {
      auto got = dec.next();
      if (!got || !*got) break;
    }
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  for (int round = 0; round < 500; ++round) {
    std::vector<char> junk(rng() % 48);
    for (auto& c : junk)
      c = static_cast<char>(rng());
    (void)decode_message(sys, junk);
  }
  SUCCEED("no crash");
}

TEST_CASE("a peer's message cannot claim more than its bytes, nor carry a "
          "caf::duration") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  // A string whose size prefix claims about 4 GiB: refused before any
  // allocation of that size (CAF's own deserializer resizes first).
  auto bytes = encode_message(sys, caf::make_message(std::string{"abcd"}));
  REQUIRE(bytes);
  auto at = std::search(bytes->begin(), bytes->end(), std::begin("abcd"),
                        std::begin("abcd") + 4);
  REQUIRE(at != bytes->end());
  REQUIRE(at != bytes->begin());
  REQUIRE(*(at - 1) == 4); // the size, one varbyte
  std::vector<char> forged(bytes->begin(), at - 1);
  for (char c : {'\xff', '\xff', '\xff', '\xff', '\x0f'})
    forged.push_back(c);
  forged.insert(forged.end(), at, bytes->end());
  CHECK_FALSE(decode_message(sys, forged));
  // A duration: CAF decodes any time unit and would read its unit names
  // out of range when printing it; refused whatever its unit.
  auto with_duration = encode_message(
      sys, caf::make_message(caf::duration{caf::time_unit::seconds, 5}));
  REQUIRE(with_duration);
  CHECK_FALSE(decode_message(sys, *with_duration));
}
