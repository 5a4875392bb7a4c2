// The published actor of the stream node tests (the simulated network and
// real TCP run the same one): a small key-value store. `kv_get_atom, key`
// answers the value ("" if none); `kv_put_atom, key, value` stores it and
// is usually sent one-way. It starts with k1 = v1.
#pragma once

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>

#include <map>
#include <memory>
#include <string>

namespace shardwire::test {

using kv_get_atom = caf::atom_constant<caf::atom("kvget")>;
using kv_put_atom = caf::atom_constant<caf::atom("kvput")>;

inline caf::behavior kv_impl(caf::event_based_actor*) {
  auto store = std::make_shared<std::map<std::string, std::string>>();
  (*store)["k1"] = "v1";
  return {
      [=](kv_get_atom, const std::string& key) -> std::string {
        auto i = store->find(key);
        return i == store->end() ? std::string{} : i->second;
      },
      [=](kv_put_atom, const std::string& key, const std::string& value) {
        (*store)[key] = value;
      },
  };
}

} // namespace shardwire::test
