// What tls_echo_server and tls_echo_client share: their certificate
// options checked with errors that name the option, and the STARTTLS line
// protocol (the upgrade itself is transport_ref::start_tls).
//
// The STARTTLS line protocol (both demos' --help and docs/tls.md):
//   1. The client connects in plaintext and sends the line "STARTTLS\r\n"
//      (a line ends at LF; a CR before it is dropped, so "STARTTLS\n" is
//      accepted too). It may send its TLS ClientHello right behind it,
//      without waiting (pipelining): those bytes are kept.
//   2. The server answers "READY\r\n" and starts TLS as the server on the
//      bytes that follow the command line.
//   3. The client reads the READY line and starts TLS as the client on the
//      bytes that follow it (none, from this server).
//   Any other first line, or more than 1024 bytes without a line end, is
//   answered "ERROR expected STARTTLS\r\n" by the server, which then closes.
//   After the handshake both ends speak the plain echo demo's protocol.
//
// Everything here runs on the shard of its connection.
#pragma once

#include "demos/print.hpp"

#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/config.hpp"
#include "transports/tls.hpp"

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace demo {

// -- certificate options ------------------------------------------------------

/// The command line with `--ca=...` spelled `--global.ca=...`, for
/// parse_args. CAF 0.17 cannot look up a long option whose name is a prefix
/// of "caf#" (its old system-option prefix: "c", "ca", "caf"): `--ca=FILE`
/// would be refused as an unknown option. The group-qualified spelling
/// reaches the same option; --help still shows `--ca`. Keep the result
/// alive while `argv()` is in use.
class ca_option_argv {
public:
  ca_option_argv(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) {
      std::string_view arg{argv[i]};
      if (i > 0 && (arg == "--ca" || arg.substr(0, 5) == "--ca="))
        args_.push_back("--global." + std::string{arg.substr(2)});
      else
        args_.emplace_back(arg);
    }
    for (auto& a : args_)
      ptrs_.push_back(a.data());
    ptrs_.push_back(nullptr);
  }

  int argc() const noexcept { return static_cast<int>(args_.size()); }
  char** argv() noexcept { return ptrs_.data(); }

private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

/// Prints `error: --OPTION: cannot read 'PATH': why` unless `path` is empty
/// or a readable file; returns whether it is.
inline bool check_file_option(const std::string& path,
                              std::string_view option) {
  if (path.empty()) return true;
  struct stat st {};
  std::string why;
  if (::stat(path.c_str(), &st) != 0)
    why = std::strerror(errno);
  else if (S_ISDIR(st.st_mode))
    why = "is a directory, not a PEM file";
  else if (::access(path.c_str(), R_OK) != 0)
    why = std::strerror(errno);
  if (why.empty()) return true;
  return shardwire::check_option(false, option,
                                 "cannot read '" + path + "': " + why);
}

/// Prints `error: --unix: ...` unless `path` fits a sockaddr_un (107
/// bytes); returns whether it does. (A longer path would fail in connect
/// anyway; refused here, before anything starts.)
inline bool check_unix_path(const std::string& path) {
  constexpr size_t max = sizeof(sockaddr_un{}.sun_path) - 1;
  return shardwire::check_option(path.size() <= max, "unix",
                                 "a socket path has at most " +
                                     std::to_string(max) + " bytes");
}

/// make_tls_context with a refusal printed as `error: --OPTION: ...`, the
/// option being the one whose file the error names (cert_file -> --cert,
/// key_file -> --key, ca_file -> --ca). nullptr after such a line.
inline std::shared_ptr<const shardwire::tls_context>
make_context_or_report(const shardwire::tls_context_options& opts) {
  auto ctx = shardwire::make_tls_context(opts);
  if (ctx) return *ctx;
  auto text = shardwire::describe(ctx.error());
  std::string_view option = "cert";
  if (text.find("key_file") != std::string::npos)
    option = "key";
  else if (text.find("ca_file") != std::string::npos)
    option = "ca";
  shardwire::check_option(false, option, text);
  return nullptr;
}

/// A hint naming the option behind a TLS failure the user can fix (for
/// error lines), or "".
inline std::string tls_hint(const caf::error& err,
                            const std::string& server_name) {
  using shardwire::tls_errc;
  if (shardwire::is(err, tls_errc::unknown_ca))
    return " (the server's certificate is not signed by a CA in --ca, or "
           "the system's without it)";
  if (shardwire::is(err, tls_errc::hostname_mismatch))
    return " (its certificate does not name '" + server_name +
           "': --server-hostname names another)";
  if (shardwire::is(err, tls_errc::handshake_timeout)) return " (--timeout-ms)";
  if (shardwire::is(err, tls_errc::not_tls))
    return " (a plaintext server? --starttls speaks STARTTLS first)";
  return {};
}

// -- STARTTLS -----------------------------------------------------------------

inline constexpr std::string_view starttls_command = "STARTTLS";
inline constexpr std::string_view starttls_ready = "READY";
inline constexpr std::string_view starttls_refusal =
    "ERROR expected STARTTLS\r\n";
/// The longest first line either side waits for.
inline constexpr size_t starttls_max_line = 1024;

/// The first line of a plaintext stream, collected over any number of
/// chunks.
class first_line {
public:
  enum class state { partial, complete, too_long };

  /// Adds `bytes`. Once `complete`, `line()` is the line without its end
  /// and `rest()` the bytes after it.
  state add(std::string_view bytes) {
    buf_.append(bytes);
    auto lf = buf_.find('\n');
    if (lf == std::string::npos)
      return buf_.size() > starttls_max_line ? state::too_long : state::partial;
    if (lf > starttls_max_line) return state::too_long;
    rest_ = buf_.substr(lf + 1);
    buf_.resize(lf);
    if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
    return state::complete;
  }

  const std::string& line() const noexcept { return buf_; }
  const std::string& rest() const noexcept { return rest_; }

private:
  std::string buf_;
  std::string rest_;
};

} // namespace demo
