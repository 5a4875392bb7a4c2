// The quorum store's replica protocol on the wire: one text line per
// message, framed by kv::line_reader (demos/kv_line_protocol.hpp). Pure
// functions, no actors and no I/O, so a fuzz target can drive them alone.
//
//   coordinator -> replica
//     Q <rid> <key>                        query: what do you hold for key?
//     S <rid> <key> <counter> <writer> <value>
//                                          store this version if newer
//   replica -> coordinator
//     R <rid> <counter> <writer> -         reply to Q: key absent
//     R <rid> <counter> <writer> =<value>  reply to Q: key holds value
//     A <rid>                              store acknowledged (on disk)
//
// `rid` names the request (a coordinator ignores replies to requests it no
// longer waits for). Keys are non-empty and contain no space or newline;
// a value is the rest of the line (spaces allowed, no newline). Numbers are
// unsigned decimal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kv_quorum {

/// A version of a key: ABD's multi-writer timestamp. Ordered by counter,
/// then writer id; (0, 0) is "never written".
struct timestamp {
  uint64_t counter = 0;
  uint64_t writer = 0;

  friend auto operator<=>(const timestamp&, const timestamp&) = default;
};

/// What a replica holds for one key.
struct versioned {
  timestamp ts;
  /// Nothing: absent (only with ts (0, 0): the store only writes values).
  std::optional<std::string> value;

  friend bool operator==(const versioned&, const versioned&) = default;
};

/// One message of either direction.
struct message {
  enum kind_t : char { query = 'Q', store = 'S', reply = 'R', ack = 'A' };

  kind_t kind = query;
  uint64_t rid = 0;
  /// Q and S only.
  std::string key;
  /// S and R only.
  versioned version;
};

/// The line for `m`, with its '\n'.
std::string encode(const message& m);

/// The message of one line (without '\n'), or nothing if it is malformed.
/// Total: never throws but std::bad_alloc.
std::optional<message> parse(std::string_view line);

} // namespace kv_quorum
