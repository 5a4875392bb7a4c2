// CAF's binary_deserializer with two guards for bytes from peers; everything
// else is delegated, so the format and the results are those of
// binary_deserializer.
//
// 1. A sequence (container, string, byte vector) may not claim more
//    elements than there are bytes left.
// Why: CAF 0.17 loads a byte sequence by resizing to the claimed size
// before reading, and loads a container of an empty type (a registered
// std::vector<eof>, ...) element by element with nothing to read: a few
// bytes from a peer can claim 4 GiB of memory or 4 billion iterations.
// With the guard a frame of N bytes costs at most N elements.
// 2. A message holding a caf::duration is refused: CAF decodes one with any
//    time unit, and its to_string then reads its unit-name table out of
//    range (a crash in any log line that prints the message, such as CAF's
//    "unexpected message"). tests/fuzz/README.md, finding 7. Stream nodes
// (actors/stream_node_wire.hpp) decode peers' messages with it; the fuzz
// targets build on it (tests/fuzz/bounded_deserializer.hpp).
#pragma once

#include <caf/binary_deserializer.hpp>
#include <caf/deserializer.hpp>
#include <caf/sec.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardwire::detail {

class bounded_deserializer : public caf::deserializer {
public:
  bounded_deserializer(caf::execution_unit* ctx, const char* data, size_t size)
      : caf::deserializer(ctx), inner_(ctx, data, size) {}

  size_t remaining() const noexcept { return inner_.remaining(); }

  caf::error begin_object(uint16_t& nr, std::string& name) override {
    if (auto err = inner_.begin_object(nr, name)) return err;
    // A caf::message names its element types here ("@<>+@duration+...").
    if (names_duration(name)) return caf::sec::unknown_type;
    return caf::none;
  }
  caf::error end_object() override { return inner_.end_object(); }
  caf::error begin_sequence(size_t& n) override {
    if (auto err = inner_.begin_sequence(n)) return err;
    if (n > inner_.remaining()) return caf::sec::end_of_stream;
    return caf::none;
  }
  caf::error end_sequence() override { return inner_.end_sequence(); }
  caf::error apply_raw(size_t n, void* data) override {
    return inner_.apply_raw(n, data);
  }

  /// True if `types` is a caf::message type list holding "@duration".
  static bool names_duration(std::string_view types) {
    constexpr std::string_view token = "@duration";
    for (size_t at = types.find(token); at != std::string_view::npos;
         at = types.find(token, at + 1)) {
      bool starts = at == 0 || types[at - 1] == '+';
      size_t end = at + token.size();
      bool ends = end == types.size() || types[end] == '+';
      if (starts && ends) return true;
    }
    return false;
  }

protected:
  caf::error apply_impl(int8_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(uint8_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(int16_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(uint16_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(int32_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(uint32_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(int64_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(uint64_t& x) override { return inner_.apply(x); }
  caf::error apply_impl(float& x) override { return inner_.apply(x); }
  caf::error apply_impl(double& x) override { return inner_.apply(x); }
  caf::error apply_impl(long double& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::string& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::u16string& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::u32string& x) override { return inner_.apply(x); }

  caf::binary_deserializer inner_;
};

} // namespace shardwire::detail
