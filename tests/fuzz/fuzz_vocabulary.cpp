// Fuzz target: every vocabulary type decoded from the bytes a remote node
// may send (CAF 0.17's binary_deserializer, as the middleman uses it).
//
// Input: byte 0 selects the type (its index in `vocabulary`, modulo the
// count), the rest is the serialized value, decoded with
// bounded_deserializer.hpp's guard (see there why).
//
// Oracles, besides AddressSanitizer and UBSan: a value that decoded is
// serialized (s1; floats as raw bits, raw_float_serializer.hpp), decoded
// again, which must succeed and consume all of s1, and serialized again
// (s2). s1 != s2 means the type's `inspect` does not
// read back what it writes: abort. The decoded value is also printed and its
// errors and addresses rendered (exercise.hpp).
#include "tests/fuzz/exercise.hpp"
#include "tests/fuzz/vocabulary.hpp"

#include <cstdio>
#include <cstdlib>
#include <typeinfo>

using namespace shardwire;
using namespace shardwire::fuzz;

namespace {

[[noreturn]] void fail(const char* what, const char* type) {
  std::fprintf(stderr, "fuzz_vocabulary: %s for %s\n", what, type);
  std::abort();
}

template <class T>
void check(fuzz_env& env, const char* data, size_t size) {
  T x{};
  if (!decode(env.ctx(), data, size, x))
    return; // refused: fine, as long as nothing broke
  exercise(x);
  auto s1 = to_bytes(env.ctx(), x);
  T y{};
  if (auto err = from_bytes(env.ctx(), s1, y))
    fail(("re-decoding failed: " + describe(err)).c_str(), typeid(T).name());
  auto s2 = to_bytes(env.ctx(), y);
  if (s1 != s2) {
    dump("first encoding", s1);
    dump("second encoding", s2);
    fail("round trip changed the bytes", typeid(T).name());
  }
}

template <class... Ts>
void dispatch(type_list<Ts...>, size_t index, fuzz_env& env, const char* data,
              size_t size) {
  size_t i = 0;
  ((i++ == index ? check<Ts>(env, data, size) : void()), ...);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& env = fuzz_env::get();
  dispatch(vocabulary{}, data[0] % vocabulary::size, env,
           reinterpret_cast<const char*>(data) + 1, size - 1);
  env.reset();
  return 0;
}
