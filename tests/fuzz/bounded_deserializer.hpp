// CAF's binary_deserializer with one guard added: a sequence (container,
// string, byte vector) may not claim more elements than there are bytes
// left. Everything else is delegated, so the format and the results are
// those of binary_deserializer.
//
// Why: CAF 0.17 loads a byte sequence by resizing to the claimed size
// before reading (caf/data_processor.hpp, apply_sequence for
// is_byte_sequence), and loads a container of an empty type (every
// std::vector<T> that add_message_type registers, T = eof, pause, ...)
// element by element with nothing to read. A few bytes can thus claim
// 4 GiB. That is an open finding (tests/fuzz/README.md); without the guard
// every fuzz run would stop at it within seconds and explore nothing else.
// The fuzz targets decode untrusted input with this; re-decoding their own
// serialized output uses binary_deserializer itself. With
// SHARDWIRE_FUZZ_STRICT=1 in the environment they use binary_deserializer
// for everything (and reproduce the finding).
#pragma once

#include <caf/binary_deserializer.hpp>
#include <caf/deserializer.hpp>
#include <caf/sec.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace shardwire::fuzz {

class bounded_deserializer final : public caf::deserializer {
public:
  /// With `raw_floats`, floating-point values are read as raw bits, the
  /// encoding of raw_float_serializer (for reading back its output).
  bounded_deserializer(caf::execution_unit* ctx, const char* data, size_t size,
                       bool raw_floats = false)
      : caf::deserializer(ctx), inner_(ctx, data, size),
        raw_floats_(raw_floats) {}

  size_t remaining() const noexcept { return inner_.remaining(); }

  caf::error begin_object(uint16_t& nr, std::string& name) override {
    if (auto err = inner_.begin_object(nr, name)) return err;
    // Open finding 7 (README.md): CAF decodes a caf::duration with any
    // time unit, and its to_string then reads its unit-name table out of
    // range (a crash in every log line that prints the value). A
    // caf::message names its element types here ("@<>+@duration+..."):
    // refuse one that carries a duration, so runs go on.
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

  /// True unless SHARDWIRE_FUZZ_STRICT=1 asks to decode without the guard.
  static bool enabled() {
    static const bool on = [] {
      auto* v = std::getenv("SHARDWIRE_FUZZ_STRICT");
      return v == nullptr || std::string{v} != "1";
    }();
    return on;
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
  caf::error apply_impl(float& x) override {
    if (!raw_floats_) return inner_.apply(x);
    uint32_t bits = 0;
    auto err = inner_.apply(bits);
    std::memcpy(&x, &bits, sizeof bits);
    return err;
  }
  caf::error apply_impl(double& x) override {
    if (!raw_floats_) return inner_.apply(x);
    uint64_t bits = 0;
    auto err = inner_.apply(bits);
    std::memcpy(&x, &bits, sizeof bits);
    return err;
  }
  caf::error apply_impl(long double& x) override {
    if (!raw_floats_) return inner_.apply(x);
    double d = 0;
    auto err = apply_impl(d);
    x = d;
    return err;
  }
  caf::error apply_impl(std::string& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::u16string& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::u32string& x) override { return inner_.apply(x); }

private:
  caf::binary_deserializer inner_;
  bool raw_floats_;
};

} // namespace shardwire::fuzz
