// Fuzz target: the framing of stream nodes (actors/stream_node_wire.hpp),
// the bytes a stream node reads from a peer: frames as `frame_decoder`
// splits them, and the caf::message in a request or response as
// `decode_message` reads it.
//
// Input: byte 0 picks how the stream is cut into reads (1-16 bytes per
// feed, or all at once), the rest is the stream. Oracles, besides the
// sanitizers:
// - the frames and the end state (error or waiting) do not depend on how
//   the stream is cut;
// - a decoded frame encodes, and its encoding decodes to the same frame
//   (errors: same code and category; a one-string context unchanged);
// - a payload that decodes to a message is printed (as a log line would)
//   and encodes again (unless it carries what stream nodes refuse), and
//   that encoding decodes again.
#include "actors/stream_node_wire.hpp"

#include "tests/fuzz/vocabulary.hpp"

#include <caf/message.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace shardwire;

namespace {

constexpr uint32_t max_frame = 64 * 1024;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_stream_node_wire: %s\n", what.c_str());
  std::abort();
}

struct outcome {
  std::vector<node_frame> frames;
  bool failed = false;
};

outcome split(const char* data, size_t size, size_t step) {
  outcome out;
  frame_decoder dec{max_frame};
  auto drain = [&] {
    for (;;) {
      auto got = dec.next();
      if (!got) {
        out.failed = true;
        return false;
      }
      if (!*got) return true;
      out.frames.push_back(std::move(**got));
    }
  };
  size_t at = 0;
  while (at < size) {
    auto n = step == 0 ? size - at : std::min(step, size - at);
    dec.feed({reinterpret_cast<const std::byte*>(data + at), n});
    at += n;
    if (!drain()) return out;
  }
  drain();
  return out;
}

// CAF 0.17's code() and category() need a non-empty error.
bool same_error(const caf::error& a, const caf::error& b) {
  if (!a || !b) return !a == !b;
  return a.code() == b.code() && a.category() == b.category();
}

bool same(const node_frame& a, const node_frame& b) {
  return a.kind == b.kind && a.id == b.id && a.version == b.version &&
         a.name == b.name && a.interface == b.interface &&
         same_error(a.error, b.error) && a.one_way == b.one_way &&
         a.failed == b.failed && a.payload == b.payload;
}

void check_frame(const node_frame& f) {
  std::vector<char> bytes;
  if (auto err = encode_frame(f, bytes, max_frame))
    fail("a decoded " + to_string(f.kind) +
         " frame does not encode: " + describe(err));
  frame_decoder dec{max_frame};
  dec.feed({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
  auto back = dec.next();
  if (!back || !*back || !same(f, **back))
    fail("a " + to_string(f.kind) + " frame changed in a round trip");
  if (dec.buffered() != 0) fail("an encoding longer than its frame");
  if (f.kind != frame_kind::request && f.kind != frame_kind::response) return;
  if (f.failed) return;
  auto& sys = fuzz::fuzz_env::get().sys;
  auto msg = decode_message(sys, f.payload);
  if (!msg) return;
  (void)caf::to_string(*msg);
  auto again = encode_message(sys, *msg);
  if (!again) return; // e.g. a type that serializes only one way
  if (!decode_message(sys, *again))
    fail("a message re-encoded from a decoded one does not decode");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto step = static_cast<size_t>(data[0] % 17); // 0: all at once
  auto* bytes = reinterpret_cast<const char*>(data + 1);
  auto whole = split(bytes, size - 1, 0);
  auto cut = split(bytes, size - 1, step);
  if (whole.failed != cut.failed || whole.frames.size() != cut.frames.size())
    fail("the frames depend on how the stream is cut into reads");
  for (size_t i = 0; i < whole.frames.size(); ++i) {
    if (!same(whole.frames[i], cut.frames[i]))
      fail("frame " + std::to_string(i) + " depends on the reads");
    check_frame(whole.frames[i]);
  }
  return 0;
}
