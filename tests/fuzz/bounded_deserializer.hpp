// The fuzz targets' deserializer: the production guards of
// actors/detail/bounded_deserializer.hpp (a sequence may not claim more
// elements than there are bytes left; a message naming a caf::duration is
// refused; see there why) plus what only the fuzzers need: floats read as
// raw bits.
//
// The sequence guard answers an open finding (tests/fuzz/README.md): without it
// every fuzz run would stop within seconds at a few bytes claiming 4 GiB
// and explore nothing else. The fuzz targets decode untrusted input with
// this; re-decoding their own serialized output uses binary_deserializer
// itself. With SHARDWIRE_FUZZ_STRICT=1 in the environment they use
// binary_deserializer for everything (and reproduce the finding).
#pragma once

#include "actors/detail/bounded_deserializer.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace shardwire::fuzz {

class bounded_deserializer final : public detail::bounded_deserializer {
public:
  /// With `raw_floats`, floating-point values are read as raw bits, the
  /// encoding of raw_float_serializer (for reading back its output).
  bounded_deserializer(caf::execution_unit* ctx, const char* data, size_t size,
                       bool raw_floats = false)
      : detail::bounded_deserializer(ctx, data, size), raw_floats_(raw_floats) {
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

private:
  bool raw_floats_;
};

} // namespace shardwire::fuzz
