// What the vocabulary fuzz targets and the seed writer share: the list of
// every type a remote node may send (each one registered with CAF by
// register_types / enable_networking), a CAF actor system that knows them,
// and a decoding context that turns actor handles of other nodes into
// proxies, as CAF's middleman does.
//
// Not thread-safe: one fuzz process, one thread decoding.
#pragma once

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "actors/supervision/messages.hpp"
#include "tests/fuzz/bounded_deserializer.hpp"
#include "tests/fuzz/raw_float_serializer.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/forwarding_actor_proxy.hpp>
#include <caf/io/middleman.hpp>
#include <caf/make_actor.hpp>
#include <caf/proxy_registry.hpp>
#include <caf/scoped_execution_unit.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace shardwire::fuzz {

template <class... Ts>
struct type_list {
  static constexpr size_t size = sizeof...(Ts);
};

/// Every registered shardwire type, in a fixed order: a fuzz input's first
/// byte (modulo the count) selects one, and the seed files are named by
/// index. Append new types at the end so existing seeds keep their meaning.
using vocabulary = type_list<
    // actors/messages.hpp: register_types
    buffer, endpoint, transport_info, connected, data, eof, pause, resume, lost,
    write, writelines, write_eof, close, abort, pause_reading, resume_reading,
    set_write_buffer_limits, write_buffer_limits, get_write_buffer_size,
    get_write_buffer_limits, get_extra_info, get_status, transport_status,
    set_protocol, read_credit_returned, get_sockets, start_serving,
    stop_serving, is_serving, close_clients, abort_clients, server_actor,
    protocol_actor, transport_actor, datagram_connected, datagram,
    datagram_error, sendto, datagram_protocol_actor, datagram_transport_actor,
    process_info, subprocess_connected, pipe_data, pipe_lost, exited, signal,
    terminate, kill, get_pid, get_returncode, get_pipe_transport,
    process_output, caf::optional<int32_t>, subprocess_protocol_actor,
    subprocess_transport_actor,
    // actors/supervision/messages.hpp: register_supervision_types
    child_ready, start_child, terminate_child, restart_child, which_children,
    count_children, await_started, child_info, std::vector<child_info>,
    child_counts, child_started, child_start_failed, child_exited,
    child_restarting, supervisor_started, escalated,
    // actors/node.hpp: enable_networking
    service_lookup, service_entry, service_up, service_down,
    // actors/messages.hpp, added later (appended: seeds keep their index)
    get_protocol, set_datagram_protocol, lend_buffer, buffer_filled,
    buffered_protocol_actor, set_subprocess_protocol, send_file>;

/// Creates proxies for actor handles of other nodes, like the middleman's
/// BASP broker (minus its routing table: every valid node is reachable);
/// the proxies forward to nobody (nothing is ever sent).
class proxy_factory : public caf::proxy_registry::backend {
public:
  explicit proxy_factory(caf::actor_system& sys) : sys_(&sys) {}

  caf::strong_actor_ptr make_proxy(caf::node_id nid,
                                   caf::actor_id aid) override {
    // As caf::io::basp_broker::make_proxy: no proxy for an absent node or
    // actor id (the handle decodes as null). A node id that is present but
    // not valid (all-zero host) has no route in the broker either, so it
    // gets no proxy here; CAF serializes such an id as absent.
    if (!nid || !nid->valid() || aid == caf::invalid_actor_id) return nullptr;
    caf::actor_config cfg;
    return caf::make_actor<caf::forwarding_actor_proxy, caf::strong_actor_ptr>(
        aid, std::move(nid), sys_, cfg, caf::actor{});
  }

  void set_last_hop(caf::node_id*) override {}

private:
  caf::actor_system* sys_;
};

/// The config of the fuzz process: the types as every shardwire program
/// registers them, the middleman loaded (it gives the system its node id:
/// without it CAF 0.17 leaves the node invalid, and handles would decode
/// differently than in a networked node) but never listening or connecting,
/// and a one-thread scheduler.
class fuzz_config : public caf::actor_system_config {
public:
  fuzz_config() {
    register_types(*this);
    load<caf::io::middleman>();
    // enable_networking's registrations (without its network settings).
    add_message_type<service_lookup>("shardwire::service_lookup")
        .add_message_type<service_entry>("shardwire::service_entry")
        .add_message_type<service_up>("shardwire::service_up")
        .add_message_type<service_down>("shardwire::service_down");
    set("scheduler.max-threads", 1);
  }
};

/// The actor system and decoding context, created on first use and never
/// destroyed (fuzz processes end with exit(); tearing CAF down there would
/// only add noise).
struct fuzz_env {
  fuzz_config cfg;
  caf::actor_system sys{cfg};
  proxy_factory factory{sys};
  caf::proxy_registry proxies{sys, factory};
  caf::scoped_execution_unit unit{&sys};

  fuzz_env() { unit.proxy_registry_ptr(&proxies); }

  caf::execution_unit* ctx() { return &unit; }

  /// Drops the proxies made while decoding one input, so memory does not
  /// grow over a run.
  void reset() { proxies.clear(); }

  static fuzz_env& get() {
    static auto* env = new fuzz_env;
    return *env;
  }
};

/// Serializes `xs...` as CAF's binary_serializer does, floats as raw bits
/// (raw_float_serializer.hpp); aborts on failure (serializing a value the
/// deserializer produced must work).
template <class... Ts>
std::vector<char> to_bytes(caf::execution_unit* ctx, Ts&... xs) {
  std::vector<char> out;
  raw_float_serializer sink{ctx, out};
  if (auto err = sink(xs...)) {
    fprintf(stderr, "serializing failed: %s\n", describe(err).c_str());
    std::abort();
  }
  return out;
}

/// Reads back what `to_bytes` wrote: must succeed and use every byte.
template <class... Ts>
caf::error from_bytes(caf::execution_unit* ctx, const std::vector<char>& in,
                      Ts&... xs) {
  bounded_deserializer source{ctx, in.data(), in.size(), true};
  if (auto err = source(xs...)) return err;
  if (source.remaining() != 0)
    return caf::make_error(caf::sec::runtime_error, "bytes left unread");
  return caf::none;
}

/// Decodes `xs...` from untrusted bytes as the middleman would; false if
/// refused. Uses the bounded_deserializer (binary_deserializer plus the
/// sequence-size guard) unless SHARDWIRE_FUZZ_STRICT=1. Not also a second,
/// unguarded pass to compare with: CAF 0.17 swallows the error of an
/// element inside a caf::message (the message decodes as empty, without an
/// error), so a guarded refusal there is invisible and the unguarded pass
/// would run into the very allocation the guard stopped.
template <class... Ts>
bool decode(caf::execution_unit* ctx, const char* data, size_t size,
            Ts&... xs) {
  if (!bounded_deserializer::enabled()) {
    caf::binary_deserializer plain{ctx, data, size};
    return !plain(xs...);
  }
  bounded_deserializer guarded{ctx, data, size};
  // CAF 0.17 throws from compiled code for a bad variant index (e.g. in a
  // "@upstream_msg"): open finding 6 in README.md. Counted as refused, so
  // that runs go on; strict mode lets it terminate.
  try {
    return !guarded(xs...);
  } catch (const std::exception&) {
    return false;
  }
}

/// Prints `bytes` as hex on stderr, for the report of a failed round trip.
inline void dump(const char* label, const std::vector<char>& bytes) {
  std::fprintf(stderr, "%s (%zu bytes):", label, bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i)
    std::fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n  " : " ",
                 static_cast<unsigned>(static_cast<uint8_t>(bytes[i])));
  std::fprintf(stderr, "\n");
}

} // namespace shardwire::fuzz
