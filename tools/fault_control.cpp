#include "tools/fault_control.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace shardwire {

namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
      ++i;
    size_t j = i;
    while (j < line.size() &&
           !std::isspace(static_cast<unsigned char>(line[j])))
      ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

constexpr std::string_view help_text =
    "commands:\n"
    "  set <up|down|both>.<key> <value>\n"
    "  get <up|down>.<key>\n"
    "  faults\n"
    "  status\n"
    "  clear | reset-all\n"
    "  sever\n"
    "  help\n"
    "keys: latency-ms jitter-ms bandwidth slice-min slice-max slice-delay-us\n"
    "      cut-after reset-after reset-after-ms black-hole\n";

} // namespace

control_command parse_control_line(std::string_view line) {
  auto words = split_words(line);
  if (words.empty() || words[0].front() == '#') return control_noop{};
  auto cmd = words[0];
  auto err = [](std::string msg) { return control_error{std::move(msg)}; };
  if (cmd == "set") {
    if (words.size() != 3) return err("usage: set <dir>.<key> <value>");
    return control_set{std::string{words[1]}, std::string{words[2]}};
  }
  if (cmd == "get") {
    if (words.size() != 2) return err("usage: get <dir>.<key>");
    auto qualified = words[1];
    auto dot = qualified.find('.');
    auto dir = qualified.substr(0, std::min(dot, qualified.size()));
    if (dot == std::string_view::npos || (dir != "up" && dir != "down"))
      return err("expected up.<key> or down.<key>");
    auto key = qualified.substr(dot + 1);
    auto& keys = fault_keys();
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      return err("unknown fault " + std::string{qualified});
    return control_get{dir == "up" ? fault_direction::up
                                   : fault_direction::down,
                       std::string{key}};
  }
  if (words.size() != 1) return err("unexpected arguments");
  if (cmd == "faults") return control_faults{};
  if (cmd == "status") return control_status{};
  if (cmd == "clear" || cmd == "reset-all") return control_clear{};
  if (cmd == "sever") return control_sever{};
  if (cmd == "help") return control_help{};
  return err("unknown command " + std::string{cmd} + " (try help)");
}

std::string_view control_help_text() noexcept {
  return help_text;
}

} // namespace shardwire
