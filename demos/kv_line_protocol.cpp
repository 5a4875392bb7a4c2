#include "demos/kv_line_protocol.hpp"

namespace kv {

parsed_line parse_line(std::string_view line) {
  // Takes the next space-separated word off the front of `line`.
  auto word = [&line]() {
    auto sp = line.find(' ');
    auto w = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view{}
                                        : line.substr(sp + 1);
    return w;
  };
  parsed_line out;
  auto cmd = word();
  if (cmd == "SET") {
    out.what = op::set;
    out.key = word();
    out.value = line; // the rest of the line, spaces included
  } else if (cmd == "GET" || cmd == "DEL") {
    out.what = cmd == "GET" ? op::get : op::del;
    out.key = word();
    if (!line.empty()) return parsed_line{}; // extra words: malformed
  } else if (cmd == "PING" && line.empty()) {
    out.kind = parsed_line::ping;
    return out;
  } else {
    return parsed_line{};
  }
  if (out.key.empty()) return parsed_line{};
  out.kind = parsed_line::request;
  return out;
}

} // namespace kv
