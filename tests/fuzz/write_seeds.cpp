// Writes the seed inputs of every fuzz target: for each vocabulary type a
// default and (where it has fields) a filled-in value, serialized as the
// middleman would send it, plus valid lines for the text protocols.
//
//   fuzz_write_seeds DIR     writes DIR/<target>/seed-* (DIR is created)
//
// The committed corpora under tests/fuzz/corpus/ began as this output,
// grown by fuzzing and minimised with -merge=1 (see README.md). Handles are
// proxies of a made-up remote node, so they decode as remote actors.
#include "tests/fuzz/vocabulary.hpp"

#include <caf/make_message.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string_view>

using namespace shardwire;
using namespace shardwire::fuzz;
namespace fs = std::filesystem;

namespace {

struct samples {
  caf::actor actor;
  endpoint v4{endpoint::kind::ipv4, "127.0.0.1", 8888, {}};
  endpoint v6{endpoint::kind::ipv6, "::1", 53, {}};
  endpoint path{endpoint::kind::unix_path, {}, 0, "/tmp/sock"};
  transport_info info{"tcp", v4, v6, 7, 1, true, {{"cipher", "none"}}};
  caf::error err = make_errno_error(104, "read");
  caf::error sw = make_error(sw_errc::node_unavailable, "kv@127.0.0.1:7001");
  buffer bytes = buffer::copy_of(std::string_view{"\0\x01\xff\n payload", 12});

  explicit samples(fuzz_env& env) {
    caf::node_id::default_data::host_id_type host{};
    host[0] = 0x5a;
    auto nid = caf::make_node_id(4242, host);
    actor = caf::actor_cast<caf::actor>(env.proxies.get_or_put(nid, 17));
  }

  template <class Handle>
  Handle as() const {
    return caf::actor_cast<Handle>(actor);
  }

  /// Values of T worth starting from: the default, and a filled-in one.
  template <class T>
  std::vector<T> of() const {
    std::vector<T> out{T{}};
    if constexpr (std::is_same_v<T, buffer>) out.push_back(bytes);
    if constexpr (std::is_same_v<T, endpoint>) out = {v4, v6, path};
    if constexpr (std::is_same_v<T, transport_info>) out.push_back(info);
    if constexpr (std::is_same_v<T, connected>)
      out.push_back({as<transport_actor>(), info});
    if constexpr (std::is_same_v<T, data>) out.push_back({bytes, {}});
    if constexpr (std::is_same_v<T, lost>) out = {lost{}, lost{err}, lost{sw}};
    if constexpr (std::is_same_v<T, shardwire::write>) out.push_back({bytes});
    if constexpr (std::is_same_v<T, writelines>)
      out.push_back({{bytes, buffer{}, buffer::copy_of("x")}});
    if constexpr (std::is_same_v<T, set_write_buffer_limits>)
      out.push_back({uint64_t{65536}, uint64_t{16384}});
    if constexpr (std::is_same_v<T, write_buffer_limits>)
      out.push_back({16384, 65536});
    if constexpr (std::is_same_v<T, transport_status>)
      out.push_back({true, true, 77});
    if constexpr (std::is_same_v<T, set_protocol>)
      out.push_back({as<protocol_actor>()});
    if constexpr (std::is_same_v<T, set_datagram_protocol>)
      out.push_back({as<datagram_protocol_actor>()});
    if constexpr (caf::is_typed_actor<T>::value) out.push_back(as<T>());
    if constexpr (std::is_same_v<T, datagram_connected>)
      out.push_back({as<datagram_transport_actor>(), info});
    if constexpr (std::is_same_v<T, datagram>) out.push_back({bytes, v6, {}});
    if constexpr (std::is_same_v<T, datagram_error>) out.push_back({err});
    if constexpr (std::is_same_v<T, sendto>) out.push_back({bytes, v4});
    if constexpr (std::is_same_v<T, process_info>)
      out.push_back({99, 99, {"/bin/sh", "-c", "date"}, 1});
    if constexpr (std::is_same_v<T, subprocess_connected>)
      out.push_back(
          {as<subprocess_transport_actor>(), {99, 99, {"/bin/date"}, 0}});
    if constexpr (std::is_same_v<T, pipe_data>) out.push_back({2, bytes, {}});
    if constexpr (std::is_same_v<T, pipe_lost>) out.push_back({0, err});
    if constexpr (std::is_same_v<T, exited>) out.push_back({-9});
    if constexpr (std::is_same_v<T, shardwire::signal>)
      out.push_back({15, true});
    if constexpr (std::is_same_v<T, get_pipe_transport>) out.push_back({1});
    if constexpr (std::is_same_v<T, process_output>)
      out.push_back({"worker-1", 1, bytes, {}});
    if constexpr (std::is_same_v<T, caf::optional<int32_t>>)
      out.push_back(int32_t{3});
    if constexpr (std::is_same_v<T, child_ready>) out.push_back({"db"});
    if constexpr (std::is_same_v<T, start_child>)
      out.push_back({caf::make_message(std::string{"arg"}, int32_t{1}, info)});
    if constexpr (std::is_same_v<T, terminate_child>)
      out.push_back({actor, "db"});
    if constexpr (std::is_same_v<T, restart_child>) out.push_back({"db"});
    if constexpr (std::is_same_v<T, child_info>)
      out.push_back({"db", actor, child_state::running, 2});
    if constexpr (std::is_same_v<T, std::vector<child_info>>)
      out.push_back({{"db", actor, child_state::running, 2},
                     {"web", {}, child_state::restarting, 0}});
    if constexpr (std::is_same_v<T, child_counts>) out.push_back({2, 1});
    if constexpr (std::is_same_v<T, child_started>)
      out.push_back({"db", actor, 1});
    if constexpr (std::is_same_v<T, child_start_failed>)
      out.push_back({"db", sw});
    if constexpr (std::is_same_v<T, child_exited>)
      out.push_back({"db", err, true});
    if constexpr (std::is_same_v<T, child_restarting>)
      out.push_back({"db", caf::timespan{250000000}, 3});
    if constexpr (std::is_same_v<T, escalated>) out.push_back({sw});
    if constexpr (std::is_same_v<T, service_lookup>) out.push_back({"kv", 1});
    if constexpr (std::is_same_v<T, service_entry>)
      out.push_back({actor, {"shardwire::data", "shardwire::eof"}, 1});
    if constexpr (std::is_same_v<T, service_up>) out.push_back({"kv", actor});
    if constexpr (std::is_same_v<T, service_down>) out.push_back({"kv", sw});
    return out;
  }
};

void write_file(const fs::path& file, const std::vector<char>& bytes) {
  std::ofstream out{file, std::ios::binary};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_text(const fs::path& dir, std::string_view name,
                std::string_view text) {
  write_file(dir / ("seed-" + std::string{name}),
             std::vector<char>(text.begin(), text.end()));
}

template <class... Ts>
void write_binary(type_list<Ts...>, fuzz_env& env, const samples& s,
                  const fs::path& vocab_dir, const fs::path& msg_dir) {
  uint8_t index = 0;
  auto one = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    int n = 0;
    for (auto& x : s.of<T>()) {
      auto name = std::to_string(index) + "-" + std::to_string(n++);
      auto value = x;
      auto body = to_bytes(env.ctx(), value);
      body.insert(body.begin(), static_cast<char>(index));
      write_file(vocab_dir / ("seed-" + name), body);
      // As a remote message: forwarding stack, then the message.
      std::vector<caf::strong_actor_ptr> stages;
      if (n == 2)
        stages.push_back(caf::actor_cast<caf::strong_actor_ptr>(s.actor));
      auto msg = caf::make_message(x);
      write_file(msg_dir / ("seed-" + name), to_bytes(env.ctx(), stages, msg));
    }
    ++index;
  };
  (one(static_cast<Ts*>(nullptr)), ...);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_write_seeds DIR\n";
    return 2;
  }
  fs::path root{argv[1]};
  auto dir = [&](const char* target) {
    auto d = root / target;
    fs::create_directories(d);
    return d;
  };
  auto& env = fuzz_env::get();
  samples s{env};
  write_binary(vocabulary{}, env, s, dir("fuzz_vocabulary"),
               dir("fuzz_message"));

  auto spec = dir("fuzz_fault_spec");
  write_text(spec, "latency", "up.latency-ms=200\ndown.jitter-ms=50\n");
  write_text(spec, "slices",
             "both.slice-max=16\nboth.slice-min=4\nup.slice-delay-us=100\n");
  write_text(spec, "limits",
             "down.cut-after=1024\nup.reset-after=off\n"
             "both.reset-after-ms=500\ndown.bandwidth=65536\n");
  write_text(spec, "black-hole", "up.black-hole=on\nup.black-hole=0\n");
  write_text(spec, "errors",
             "sideways.latency-ms=1\nup.nope=1\nup.slice-max=2\n"
             "up.slice-min=3\nup.latency-ms=-5\nup.cut-after=\n");

  auto control = dir("fuzz_fault_control");
  write_text(control, "session",
             "set both.latency-ms 80\nget down.latency-ms\nfaults\n"
             "status\nreset-all\n");
  write_text(control, "all",
             "# comment\n\nset up.slice-max 8\r\nset up.slice-min 2\n"
             "set down.black-hole true\nset both.cut-after -1\n"
             "get up.slice-min\nclear\nsever\nhelp\n");
  write_text(control, "errors",
             "set up.latency-ms\nget both.latency-ms\nget up.nope\n"
             "faults now\nfrobnicate\nset up.latency-ms abc\n");

  auto kv = dir("fuzz_kv_line");
  // Byte 0: line bound (1 + 4 * b), byte 1: how reads are cut.
  write_text(kv, "requests",
             std::string{"\x40\x07"} +
                 "SET k hello world\r\nGET k\nDEL k\nPING\nGET\n"
                 "SET  x\nBOGUS\nGET k extra\npartial");
  write_text(kv, "long-line",
             std::string{"\x01\x33"} + "PING\n" + std::string(40, 'A') + "\n");
  std::cout << "seeds written under " << root.string() << "\n";
  return 0;
}
