// Line-atomic printing for demos whose protocols run on several shards.
#pragma once

#include "runtime/buffer.hpp"

#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

namespace demo {

template <class... Ts>
void println(const Ts&... xs) {
  static std::mutex mtx;
  std::ostringstream out;
  (out << ... << xs);
  out << '\n';
  std::lock_guard<std::mutex> guard{mtx};
  std::cout << out.str() << std::flush;
}

/// Python's repr() of a str holding `text` (enough for the demos' ASCII).
inline std::string py_repr(std::string_view text) {
  bool has_single = text.find('\'') != std::string_view::npos;
  bool has_double = text.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char c : text) {
    switch (c) {
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\\':
      out += "\\\\";
      break;
    default:
      if (c == quote) out += '\\';
      out += c;
    }
  }
  out += quote;
  return out;
}

} // namespace demo
