#include "demos/kv_quorum/wire.hpp"

#include <charconv>

namespace kv_quorum {

namespace {

// The next space-separated word of `rest` (consumed with its space).
std::optional<std::string_view> word(std::string_view& rest) {
  auto sp = rest.find(' ');
  auto w = rest.substr(0, sp);
  rest =
      sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  if (w.empty()) return std::nullopt;
  return w;
}

std::optional<uint64_t> number(std::string_view& rest) {
  auto w = word(rest);
  if (!w) return std::nullopt;
  uint64_t x = 0;
  auto [end, ec] = std::from_chars(w->data(), w->data() + w->size(), x);
  if (ec != std::errc{} || end != w->data() + w->size()) return std::nullopt;
  return x;
}

void append_version(std::string& out, const versioned& v) {
  out += std::to_string(v.ts.counter);
  out += ' ';
  out += std::to_string(v.ts.writer);
}

} // namespace

std::string encode(const message& m) {
  std::string out;
  out += static_cast<char>(m.kind);
  out += ' ';
  out += std::to_string(m.rid);
  switch (m.kind) {
  case message::query:
    out += ' ';
    out += m.key;
    break;
  case message::store:
    out += ' ';
    out += m.key;
    out += ' ';
    append_version(out, m.version);
    out += ' ';
    out += m.version.value.value_or("");
    break;
  case message::reply:
    out += ' ';
    append_version(out, m.version);
    out += m.version.value ? " =" + *m.version.value : std::string{" -"};
    break;
  case message::ack:
    break;
  }
  out += '\n';
  return out;
}

std::optional<message> parse(std::string_view line) {
  if (line.size() < 2 || line[1] != ' ') return std::nullopt;
  message m;
  auto rest = line.substr(2);
  auto rid = number(rest);
  if (!rid) return std::nullopt;
  m.rid = *rid;
  auto version = [&]() -> bool {
    auto c = number(rest);
    auto w = number(rest);
    if (!c || !w) return false;
    m.version.ts = {*c, *w};
    return true;
  };
  switch (line[0]) {
  case 'Q': {
    m.kind = message::query;
    auto k = word(rest);
    if (!k || !rest.empty()) return std::nullopt;
    m.key = std::string{*k};
    return m;
  }
  case 'S': {
    m.kind = message::store;
    auto k = word(rest);
    if (!k || !version()) return std::nullopt;
    m.key = std::string{*k};
    m.version.value = std::string{rest};
    return m;
  }
  case 'R': {
    m.kind = message::reply;
    if (!version() || rest.empty()) return std::nullopt;
    if (rest == "-") return m;
    if (rest[0] != '=') return std::nullopt;
    m.version.value = std::string{rest.substr(1)};
    return m;
  }
  case 'A':
    m.kind = message::ack;
    if (!rest.empty()) return std::nullopt;
    return m;
  default:
    return std::nullopt;
  }
}

} // namespace kv_quorum
