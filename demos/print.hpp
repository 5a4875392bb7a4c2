// Line-atomic printing for demos whose protocols run on several shards.
#pragma once

#include "runtime/buffer.hpp"

#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

namespace demo {

/// One lock for both streams: a line on stdout and one on stderr from two
/// shards must not interleave when a terminal (or a test) reads both.
inline std::mutex& print_mutex() {
  static std::mutex mtx;
  return mtx;
}

/// Writes the line whole: handlers run on several shard threads, and a
/// chain of `<<` from two of them interleaves mid-line ("node node 1 ...").
template <class... Ts>
void println_to(std::ostream& os, const Ts&... xs) {
  std::ostringstream out;
  (out << ... << xs);
  out << '\n';
  std::lock_guard<std::mutex> guard{print_mutex()};
  os << out.str() << std::flush;
}

template <class... Ts>
void println(const Ts&... xs) {
  println_to(std::cout, xs...);
}

template <class... Ts>
void eprintln(const Ts&... xs) {
  println_to(std::cerr, xs...);
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
