#include "actors/stream_node_wire.hpp"

#include "actors/detail/bounded_deserializer.hpp"

#include "actors/errors.hpp"

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>
#include <caf/type_nr.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string_view>
#include <typeinfo>

namespace shardwire {

namespace {

// -- writing ------------------------------------------------------------------

struct writer {
  std::vector<char>& out;

  void u8(uint8_t x) { out.push_back(static_cast<char>(x)); }

  void u32(uint32_t x) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((x >> shift) & 0xFF));
  }

  void u64(uint64_t x) {
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((x >> shift) & 0xFF));
  }

  void str(std::string_view x) {
    u32(static_cast<uint32_t>(x.size()));
    out.insert(out.end(), x.begin(), x.end());
  }

  void names(const std::set<std::string>& xs) {
    u32(static_cast<uint32_t>(xs.size()));
    for (auto& x : xs)
      str(x);
  }

  // An error: u8 present; then u8 code, u64 category, string context.
  void err(const caf::error& x) {
    if (!x) {
      u8(0);
      return;
    }
    u8(1);
    u8(x.code());
    u64(static_cast<uint64_t>(x.category()));
    const auto& ctx = x.context();
    if (ctx.empty())
      str("");
    else if (ctx.match_elements<std::string>())
      str(ctx.get_as<std::string>(0));
    else
      str(caf::to_string(ctx));
  }
};

// -- reading ------------------------------------------------------------------

caf::error malformed(std::string what) {
  return make_error(sw_errc::incompatible_node,
                    "malformed stream node frame: " + std::move(what));
}

struct reader {
  std::span<const char> in;
  size_t pos = 0;

  size_t left() const noexcept { return in.size() - pos; }

  bool u8(uint8_t& x) {
    if (left() < 1) return false;
    x = static_cast<uint8_t>(in[pos++]);
    return true;
  }

  bool u32(uint32_t& x) {
    if (left() < 4) return false;
    x = 0;
    for (int i = 0; i < 4; ++i)
      x = (x << 8) | static_cast<uint8_t>(in[pos++]);
    return true;
  }

  bool u64(uint64_t& x) {
    if (left() < 8) return false;
    x = 0;
    for (int i = 0; i < 8; ++i)
      x = (x << 8) | static_cast<uint8_t>(in[pos++]);
    return true;
  }

  bool str(std::string& x) {
    uint32_t n;
    if (!u32(n) || left() < n) return false;
    x.assign(in.data() + pos, n);
    pos += n;
    return true;
  }

  bool names(std::set<std::string>& xs) {
    uint32_t n;
    if (!u32(n)) return false;
    // Each name takes at least its 4-byte size: a count beyond that is a
    // lie, refused before anything is allocated for it.
    if (n > left() / 4) return false;
    for (uint32_t i = 0; i < n; ++i) {
      std::string x;
      if (!str(x)) return false;
      xs.insert(std::move(x));
    }
    return true;
  }

  bool err(caf::error& x) {
    uint8_t present;
    if (!u8(present) || present > 1) return false;
    if (present == 0) {
      x = caf::error{};
      return true;
    }
    uint8_t code;
    uint64_t category;
    std::string context;
    if (!u8(code) || !u64(category) || !str(context)) return false;
    if (code == 0) return false; // code 0 is "no error" in CAF 0.17
    auto cat = static_cast<caf::atom_value>(category);
    x = context.empty() ? caf::error{code, cat}
                        : caf::error{code, cat, caf::make_message(context)};
    return true;
  }

  void rest(std::vector<char>& out) {
    out.assign(in.begin() + static_cast<ptrdiff_t>(pos), in.end());
    pos = in.size();
  }
};

bool is_actor_handle(const caf::message& msg, size_t i) {
  auto [nr, ti] = msg.type(i);
  if (nr == caf::type_nr<caf::actor>::value ||
      nr == caf::type_nr<caf::actor_addr>::value ||
      nr == caf::type_nr<caf::strong_actor_ptr>::value ||
      nr == caf::type_nr<caf::weak_actor_ptr>::value ||
      nr == caf::type_nr<std::vector<caf::actor>>::value ||
      nr == caf::type_nr<std::vector<caf::actor_addr>>::value ||
      nr == caf::type_nr<std::vector<caf::strong_actor_ptr>>::value)
    return true;
  // Typed handles have no type number; their mangled name says what they are.
  return nr == 0 && ti != nullptr &&
         std::string_view{ti->name()}.find("typed_actor") !=
             std::string_view::npos;
}

} // namespace

std::string to_string(frame_kind x) {
  switch (x) {
  case frame_kind::lookup:
    return "lookup";
  case frame_kind::entry:
    return "entry";
  case frame_kind::request:
    return "request";
  case frame_kind::response:
    return "response";
  case frame_kind::ping:
    return "ping";
  case frame_kind::pong:
    return "pong";
  case frame_kind::down:
    return "down";
  }
  return "unknown";
}

caf::error encode_frame(const node_frame& f, std::vector<char>& out,
                        uint32_t max_frame_size) {
  std::vector<char> body;
  writer w{body};
  w.u8(static_cast<uint8_t>(f.kind));
  switch (f.kind) {
  case frame_kind::lookup:
    w.u32(f.version);
    w.str(f.name);
    w.names(f.interface);
    break;
  case frame_kind::entry:
    w.u32(f.version);
    w.err(f.error);
    w.names(f.interface);
    break;
  case frame_kind::request:
    w.u64(f.id);
    w.u8(f.one_way ? 1 : 0);
    body.insert(body.end(), f.payload.begin(), f.payload.end());
    break;
  case frame_kind::response:
    w.u64(f.id);
    w.u8(f.failed ? 1 : 0);
    if (f.failed)
      w.err(f.error);
    else
      body.insert(body.end(), f.payload.begin(), f.payload.end());
    break;
  case frame_kind::ping:
  case frame_kind::pong:
    w.u64(f.id);
    break;
  case frame_kind::down:
    w.err(f.error);
    break;
  default:
    return make_error(sw_errc::invalid_argument,
                      "stream node frame of unknown kind");
  }
  if (body.size() > max_frame_size)
    return make_error(sw_errc::invalid_argument,
                      "stream node frame of " + std::to_string(body.size()) +
                          " bytes exceeds the bound of " +
                          std::to_string(max_frame_size));
  writer{out}.u32(static_cast<uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return caf::none;
}

caf::expected<node_frame> decode_frame_body(std::span<const char> body) {
  reader r{body};
  node_frame f;
  uint8_t kind;
  if (!r.u8(kind)) return malformed("empty frame");
  f.kind = static_cast<frame_kind>(kind);
  bool ok = false;
  switch (f.kind) {
  case frame_kind::lookup:
    ok = r.u32(f.version) && r.str(f.name) && r.names(f.interface);
    break;
  case frame_kind::entry:
    ok = r.u32(f.version) && r.err(f.error) && r.names(f.interface);
    break;
  case frame_kind::request: {
    uint8_t one_way;
    ok = r.u64(f.id) && r.u8(one_way) && one_way <= 1;
    if (ok) {
      f.one_way = one_way == 1;
      r.rest(f.payload);
    }
    break;
  }
  case frame_kind::response: {
    uint8_t failed;
    ok = r.u64(f.id) && r.u8(failed) && failed <= 1;
    if (ok) {
      f.failed = failed == 1;
      if (f.failed)
        ok = r.err(f.error) && f.error;
      else
        r.rest(f.payload);
    }
    break;
  }
  case frame_kind::ping:
  case frame_kind::pong:
    ok = r.u64(f.id);
    break;
  case frame_kind::down:
    ok = r.err(f.error);
    break;
  default:
    return malformed("unknown kind " + std::to_string(kind));
  }
  if (!ok) return malformed("truncated or invalid " + to_string(f.kind));
  if (r.left() != 0)
    return malformed(std::to_string(r.left()) + " trailing bytes in " +
                     to_string(f.kind));
  return f;
}

void frame_decoder::feed(std::span<const std::byte> bytes) {
  if (failed_) return;
  // Drop what was consumed before growing the buffer again.
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024 && pos_ * 2 > buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
  }
  auto p = reinterpret_cast<const char*>(bytes.data());
  buf_.insert(buf_.end(), p, p + bytes.size());
}

caf::expected<std::optional<node_frame>> frame_decoder::next() {
  if (failed_) return failed_;
  if (buffered() < 4) return std::optional<node_frame>{};
  reader r{std::span<const char>{buf_.data() + pos_, 4}};
  uint32_t len = 0;
  r.u32(len);
  if (len > max_) {
    failed_ = make_error(sw_errc::incompatible_node,
                         "oversize stream node frame: " + std::to_string(len) +
                             " bytes, the bound is " + std::to_string(max_));
    return failed_;
  }
  if (buffered() - 4 < len) return std::optional<node_frame>{};
  auto body = std::span<const char>{buf_.data() + pos_ + 4, len};
  auto f = decode_frame_body(body);
  if (!f) {
    failed_ = f.error();
    return failed_;
  }
  pos_ += 4 + len;
  return std::optional<node_frame>{std::move(*f)};
}

caf::expected<std::vector<char>> encode_message(caf::actor_system& sys,
                                                const caf::message& msg) {
  for (size_t i = 0; i < msg.size(); ++i)
    if (is_actor_handle(msg, i))
      return make_error(sw_errc::not_supported,
                        "stream nodes do not carry actor handles (element " +
                            std::to_string(i) + " of the message)");
  std::vector<char> out;
  caf::binary_serializer sink{sys, out};
  // CAF's serializer takes the message by mutable reference.
  auto copy = msg;
  if (auto err = sink(copy)) return err;
  return out;
}

caf::expected<caf::message> decode_message(caf::actor_system& sys,
                                           std::span<const char> bytes) {
  // The bytes are a peer's: sizes they claim are bounded by the bytes
  // there are, and durations are refused (detail/bounded_deserializer.hpp).
  detail::bounded_deserializer source{sys.dummy_execution_unit(), bytes.data(),
                                      bytes.size()};
  caf::message out;
  // What CAF throws while decoding (allocation failures, its own checks)
  // refuses the message rather than ending the process.
  try {
    if (auto err = source(out)) return err;
  } catch (const std::exception& e) {
    return make_error(sw_errc::incompatible_node,
                      std::string{"undecodable stream node message: "} +
                          e.what());
  }
  // CAF 0.17 reads some truncated inputs as an empty message without an
  // error: an empty message must be exactly what an empty one encodes to.
  if (out.empty()) {
    std::vector<char> empty;
    caf::binary_serializer sink{sys, empty};
    caf::message none;
    if (sink(none) || empty.size() != bytes.size() ||
        !std::equal(empty.begin(), empty.end(), bytes.begin()))
      return make_error(sw_errc::incompatible_node,
                        "undecodable stream node message (" +
                            std::to_string(bytes.size()) + " bytes)");
    return out;
  }
  if (source.remaining() != 0)
    return make_error(sw_errc::incompatible_node,
                      "stream node message with " +
                          std::to_string(source.remaining()) +
                          " trailing bytes");
  // A peer's bytes may name actor handles our encoder never writes: CAF
  // would resolve one with this node's id to a local actor by its number.
  for (size_t i = 0; i < out.size(); ++i)
    if (is_actor_handle(out, i))
      return make_error(sw_errc::not_supported,
                        "stream nodes do not carry actor handles (element " +
                            std::to_string(i) + " of a received message)");
  return out;
}

} // namespace shardwire
