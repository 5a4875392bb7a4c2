// CAF's binary_serializer, except that floating-point values are written as
// their raw bits (long double as the bits of a double).
//
// Why: CAF 0.17's pack754 (caf/detail/ieee_754.hpp) never returns for a NaN
// or an infinity, and a decoded float, double, long double or config_value
// (in a caf::message, also one nested in an error's context) may be either.
// The round-trip oracle of the binary targets checks shardwire's `inspect`
// overloads, not CAF's float codec, so it serializes with this and reads
// its own output back with bounded_deserializer's `raw_floats` mode. Open
// finding 5 in README.md.
#pragma once

#include <caf/binary_serializer.hpp>
#include <caf/serializer.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace shardwire::fuzz {

class raw_float_serializer final : public caf::serializer {
public:
  raw_float_serializer(caf::execution_unit* ctx, std::vector<char>& buf)
      : caf::serializer(ctx), inner_(ctx, buf) {}

  caf::error begin_object(uint16_t& nr, std::string& name) override {
    return inner_.begin_object(nr, name);
  }
  caf::error end_object() override { return inner_.end_object(); }
  caf::error begin_sequence(size_t& n) override {
    return inner_.begin_sequence(n);
  }
  caf::error end_sequence() override { return inner_.end_sequence(); }
  caf::error apply_raw(size_t n, void* data) override {
    return inner_.apply_raw(n, data);
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
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return inner_.apply(bits);
  }
  caf::error apply_impl(double& x) override {
    uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return inner_.apply(bits);
  }
  caf::error apply_impl(long double& x) override {
    double d = static_cast<double>(x);
    return apply_impl(d);
  }
  caf::error apply_impl(std::string& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::u16string& x) override { return inner_.apply(x); }
  caf::error apply_impl(std::u32string& x) override { return inner_.apply(x); }

private:
  caf::binary_serializer inner_;
};

} // namespace shardwire::fuzz
