// Fuzz target: the payload of a remote message as CAF 0.17's middleman
// decodes it (caf/io/basp/remote_message_handler.hpp): the forwarding stack
// (std::vector<strong_actor_ptr>), then a type-erased caf::message whose
// element types are looked up by name in the actor system's registry, which
// holds every shardwire type.
//
// Untrusted bytes are decoded with bounded_deserializer.hpp's guard (see
// there why). CAF swallows an element's decoding error inside a message
// (it decodes as empty), so a failed re-decode shows as changed bytes.
// Oracles as in fuzz_vocabulary.cpp: sanitizers, and decode ->
// serialize -> decode -> serialize must give the same bytes twice. A message
// holding exactly one shardwire type is also exercised like a received one.
#include "tests/fuzz/exercise.hpp"
#include "tests/fuzz/vocabulary.hpp"

#include <caf/message.hpp>

#include <cstdio>
#include <cstdlib>

using namespace shardwire;
using namespace shardwire::fuzz;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_message: %s\n", what.c_str());
  std::abort();
}

template <class... Ts>
void exercise_elements(type_list<Ts...>, const caf::message& msg) {
  auto one = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (msg.match_elements<T>()) exercise(msg.get_as<T>(0));
  };
  (one(static_cast<Ts*>(nullptr)), ...);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& env = fuzz_env::get();
  {
    std::vector<caf::strong_actor_ptr> stages;
    caf::message msg;
    if (decode(env.ctx(), reinterpret_cast<const char*>(data), size, stages,
               msg)) {
      (void)caf::to_string(msg);
      exercise_elements(vocabulary{}, msg);
      auto s1 = to_bytes(env.ctx(), stages, msg);
      std::vector<caf::strong_actor_ptr> stages2;
      caf::message msg2;
      if (auto err = from_bytes(env.ctx(), s1, stages2, msg2))
        fail("re-decoding failed: " + describe(err));
      auto s2 = to_bytes(env.ctx(), stages2, msg2);
      if (s1 != s2) {
        dump("first encoding", s1);
        dump("second encoding", s2);
        fail("round trip changed the bytes");
      }
    }
  }
  env.reset();
  return 0;
}
