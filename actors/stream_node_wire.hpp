// The framing of stream nodes (actors/stream_node.hpp): node messages as
// length-prefixed frames over any byte stream.
//
// A frame is `u32 length` (big endian, the bytes after it), `u8 kind`, then
// the kind's payload; integers are big endian, a string is `u32 size` and
// its bytes, an error is its code, category and context text (below):
//   lookup   u32 version, string name, u32 n, n x string interface
//   entry    u32 version, error (none: found), u32 n, n x string interface
//   request  u64 id, u8 one_way, the serialized caf::message (to the end)
//   response u64 id, u8 failed, then an error (failed) or the serialized
//            caf::message of the reply (to the end)
//   ping     u64 seq
//   pong     u64 seq
//   down     error: the looked-up actor exited with this reason
//
// The codec is pure (no actor system, no I/O) and total: any input either
// yields frames or an error (`sw_errc::incompatible_node`: "malformed ..."
// or "oversize ..."), never a crash, an exception or unbounded memory. A
// frame above `max_frame_size` is refused from its length prefix alone,
// before its bytes are buffered.
//
// Errors cross with their code and category exactly; their context crosses
// as text: a context of one string (every `make_error(sw_errc, text)`)
// arrives unchanged, any other context arrives as CAF's rendering of it.
//
// Messages (`encode_message` / `decode_message`) are serialized with CAF
// 0.17's binary serializer of `sys`: every type in them must be registered
// in the actor systems of both ends (as for CAF nodes). Actor handles are
// refused (`sw_errc::not_supported`) when they are elements of the message
// itself; nested inside a user type they are not detected and are not
// supported (a stream node has no proxy registry to resolve them). A
// peer's message is decoded with two guards CAF's own middleman lacks
// (actors/detail/bounded_deserializer.hpp): a size it claims may not
// exceed the bytes there are (a few bytes cannot claim 4 GiB), and a
// caf::duration is refused (CAF would crash printing a forged one).
#pragma once

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace shardwire {

/// Largest frame accepted (the length prefix's value): 16 MiB.
constexpr uint32_t max_stream_node_frame = 16u * 1024 * 1024;

enum class frame_kind : uint8_t {
  lookup = 1,
  entry = 2,
  request = 3,
  response = 4,
  ping = 5,
  pong = 6,
  down = 7,
};

/// "lookup", "entry", ... ("unknown" for other values).
std::string to_string(frame_kind x);

/// One frame, decoded. Only the fields of its kind are meaningful.
struct node_frame {
  frame_kind kind = frame_kind::ping;
  /// request / response: the request id; ping / pong: the sequence number.
  uint64_t id = 0;
  /// lookup / entry: the directory protocol version.
  uint32_t version = 0;
  /// lookup: the service name.
  std::string name;
  /// lookup: the interface asked for (empty: any); entry: the actor's.
  std::set<std::string> interface;
  /// entry: why the lookup failed (none: found); response: the request's
  /// error (`failed`); down: the exit reason.
  caf::error error;
  /// request: no response is wanted.
  bool one_way = false;
  /// response: `error` holds the answer, `payload` is empty.
  bool failed = false;
  /// request / response: the serialized caf::message.
  std::vector<char> payload;
};

/// Appends the bytes of `f` (length prefix included) to `out`.
/// Error (nothing appended): `sw_errc::invalid_argument` if the frame would
/// exceed `max_frame_size`.
caf::error encode_frame(const node_frame& f, std::vector<char>& out,
                        uint32_t max_frame_size = max_stream_node_frame);

/// Splits a byte stream into frames. Feed it the bytes in any chunks; take
/// complete frames with `next`. After an error it stays failed (a stream
/// that lost its framing cannot resynchronize). Not thread-safe: one per
/// connection, used by the actor that reads it.
class frame_decoder {
public:
  explicit frame_decoder(uint32_t max_frame_size = max_stream_node_frame)
      : max_(max_frame_size) {}

  /// Adds received bytes.
  void feed(std::span<const std::byte> bytes);

  /// The next complete frame, `std::nullopt` if more bytes are needed, or
  /// the error that ends the stream (`sw_errc::incompatible_node`).
  caf::expected<std::optional<node_frame>> next();

  /// Bytes buffered and not yet returned as frames.
  size_t buffered() const noexcept { return buf_.size() - pos_; }

private:
  uint32_t max_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  caf::error failed_;
};

/// Decodes exactly one frame body (kind and payload, without the length
/// prefix). Error: `sw_errc::incompatible_node` for any malformed input.
caf::expected<node_frame> decode_frame_body(std::span<const char> body);

/// Serializes `msg` with `sys`'s binary serializer. Errors:
/// `sw_errc::not_supported` for an actor handle among its elements, CAF's
/// serializer errors (e.g. an unregistered type) otherwise.
caf::expected<std::vector<char>> encode_message(caf::actor_system& sys,
                                                const caf::message& msg);

/// Deserializes a message written by `encode_message`. Error: what CAF's
/// deserializer reports (unknown type, truncated input), or
/// `sw_errc::incompatible_node` for bytes left over.
caf::expected<caf::message> decode_message(caf::actor_system& sys,
                                           std::span<const char> bytes);

} // namespace shardwire
