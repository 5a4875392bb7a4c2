// The values of Toxiproxy's HTTP API (proxies and toxics), their JSON form,
// and their translation into the fault proxy's faults (tools/fault_spec.hpp).
// chaos_proxy serves the API with them (tools/toxiproxy_api.hpp,
// docs/chaos-proxy.md "Toxiproxy API").
//
// Pure values and functions: no threads, no actors, no I/O. Every function
// takes any bytes (the request bodies come from the network and are fuzzed)
// and never throws except std::bad_alloc; refusals are `api_error` values
// carrying the HTTP status the API answers with.
#pragma once

#include "runtime/host_port.hpp"
#include "tools/fault_spec.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire::toxiproxy {

/// A refusal: the HTTP status (400 bad request body or field, 404 not
/// found, 409 exists, 500 could not start) and Toxiproxy's message.
struct api_error {
  int status = 400;
  std::string message;

  friend bool operator==(const api_error&, const api_error&) = default;
};

/// `{"error": message, "status": status}`.
std::string to_json(const api_error& err);

// -- addresses ---------------------------------------------------------------

// Addresses are runtime/host_port.hpp's.
using shardwire::host_port;
using shardwire::parse_host_port;

// -- proxies -----------------------------------------------------------------

/// A proxy as the API sees it (without its toxics).
struct proxy_config {
  std::string name;
  /// "host:port"; port 0 picks one, and the API then shows the bound port.
  std::string listen = "127.0.0.1:0";
  std::string upstream;
  bool enabled = true;
  /// chaos_proxy extra: seed of the per-connection random generators
  /// (connection k uses seed + k); nothing = the server's default.
  std::optional<uint64_t> seed;

  friend bool operator==(const proxy_config&, const proxy_config&) = default;
};

/// The body of POST /proxies: `{name, upstream, listen?, enabled?, seed?}`
/// (a "toxics" field is accepted and ignored, as Go's client sends it).
/// Errors: 400 bad JSON, unknown field, wrong type, missing name or
/// upstream, malformed address.
std::optional<api_error> parse_proxy(std::string_view body, proxy_config& out);

/// The body of POST/PATCH /proxies/{p}: any of listen, upstream, enabled,
/// seed, applied to `cfg` (a "name" equal to cfg.name and "toxics" are
/// ignored). `cfg` is unchanged on error (400).
std::optional<api_error> apply_proxy_update(std::string_view body,
                                            proxy_config& cfg);

/// The body of POST /populate and of chaos_proxy's --config file: an array
/// of proxies as for `parse_proxy` (a missing field names the proxy's
/// 1-based index, as Toxiproxy does). Nothing is returned on error.
std::optional<api_error> parse_populate(std::string_view body,
                                        std::vector<proxy_config>& out);

// -- toxics ------------------------------------------------------------------

/// A toxic: one fault of one direction of a proxy.
struct toxic {
  std::string name;
  /// One of `toxic_types()`.
  std::string type;
  /// "upstream" (client to server) = up, "downstream" = down.
  fault_direction stream = fault_direction::down;
  /// Probability in [0, 1] that the toxic applies to a connection.
  double toxicity = 1.0;
  /// Every attribute of the type (see `toxic_attributes`), defaults 0.
  std::map<std::string, int64_t> attributes;

  friend bool operator==(const toxic&, const toxic&) = default;
};

/// The toxic types: Toxiproxy's latency, bandwidth, slow_close, timeout,
/// reset_peer, slicer, limit_data, and chaos_proxy's black_hole.
const std::vector<std::string>& toxic_types();

/// The attribute names of `type`; nullptr for an unknown type.
const std::vector<std::string>* toxic_attributes(std::string_view type);

/// "upstream" or "downstream".
std::string stream_name(fault_direction d);

/// The body of POST /proxies/{p}/toxics: `{type, stream?, name?,
/// toxicity?, attributes?}`. Defaults: stream downstream, toxicity 1.0, name
/// `<type>_<stream>`, attributes 0. Errors: 400 bad JSON, unknown field or
/// attribute, wrong type, invalid toxic type, invalid stream, toxicity
/// outside [0, 1], negative or oversized attribute.
std::optional<api_error> parse_toxic(std::string_view body, toxic& out);

/// The body of POST/PATCH /proxies/{p}/toxics/{t}: attributes are merged
/// into `t`'s, toxicity replaced if given; name, type and stream may be
/// repeated but not changed. `t` is unchanged on error (400).
std::optional<api_error> apply_toxic_update(std::string_view body, toxic& t);

/// What the toxic does, as fault-proxy faults of its direction:
///   latency    latency, jitter ms          -> latency, jitter
///   bandwidth  rate KB/s (1 KB = 1000 B)   -> bandwidth = rate * 1000 B/s
///   slow_close delay ms                    -> close_delay
///   timeout    timeout ms                  -> black_hole (+ cut_after_time
///                                             when timeout > 0)
///   reset_peer timeout ms                  -> black_hole + reset_after_time
///   slicer     average_size, size_variation bytes, delay us
///                                          -> slice_min/max = average -/+
///                                             variation (min >= 1),
///                                             slice_delay (average 0: off)
///   limit_data bytes                       -> cut_after
///   black_hole (none)                      -> black_hole
fault_spec to_fault_spec(const toxic& t);

/// Whether the time-triggered faults of `t` count from the first byte that
/// reaches its direction (see fault_layer::timers_from_first_data): true
/// for `reset_peer`, whose timer starts with the first data.
bool timers_from_first_data(const toxic& t);

/// The toxics of `toxics` whose stream is `dir`, stacked in order (see
/// `stack` in fault_spec.hpp): what a connection to which all of them
/// apply runs in that direction.
fault_spec compose(const std::vector<toxic>& toxics, fault_direction dir);

// -- JSON out ----------------------------------------------------------------

/// `{"name", "type", "stream", "toxicity", "attributes": {...}}`.
std::string to_json(const toxic& t);

/// A JSON array of toxics.
std::string to_json(const std::vector<toxic>& toxics);

/// A proxy with its toxics, as the API shows it.
struct proxy_view {
  proxy_config config;
  std::vector<toxic> toxics;
};

/// `{"name", "listen", "upstream", "enabled", "toxics": [...], "seed"?}`.
std::string to_json(const proxy_view& p);

/// GET /proxies: `{name: proxy, ...}`.
std::string proxies_object_json(const std::vector<proxy_view>& proxies);

/// POST /populate: `{"proxies": [...]}`, plus "error" and "status" when
/// `err` is given.
std::string populate_json(const std::vector<proxy_view>& proxies,
                          const api_error* err);

/// `{"version": version}`.
std::string version_json(std::string_view version);

} // namespace shardwire::toxiproxy
