#include "tests/support/test_certs.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace shardwire::test {

namespace {

namespace fs = std::filesystem;

// Runs `openssl args...` with stdin from /dev/null and stdout + stderr into
// `log`; returns the exit status (127: could not start).
int run_openssl(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  std::string prog = "openssl";
  argv.push_back(prog.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "openssl", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs openssl and throws with the command line and its output on failure.
void openssl(const fs::path& dir, const std::vector<std::string>& args) {
  auto log = (dir / "openssl.log").string();
  if (run_openssl(args, log) == 0) return;
  std::string cmd = "openssl";
  for (auto& a : args)
    cmd += " " + a;
  throw std::runtime_error("test_certs: `" + cmd + "` failed:\n" + slurp(log));
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::trunc};
  out << text;
  if (!out) throw std::runtime_error("test_certs: cannot write " + path);
}

// UTCTime (YYMMDDHHMMSSZ), as `openssl ca -startdate/-enddate` take it.
std::string utc_time(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%y%m%d%H%M%SZ", &tm);
  return buf;
}

std::vector<std::string> new_key_args(const std::string& key) {
  if (key == "rsa") return {"-newkey", "rsa:2048"};
  if (key == "ec")
    return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"};
  throw std::runtime_error("test_certs: key type '" + key +
                           "' (expected ec or rsa)");
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : ", ") + x;
  return out;
}

} // namespace

bool have_openssl_cli() {
  char tmpl[] = "/tmp/sw-openssl-probe-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return false;
  ::close(fd);
  bool ok = run_openssl({"version"}, tmpl) == 0;
  std::remove(tmpl);
  return ok;
}

// -- temp_dir -----------------------------------------------------------------

temp_dir::temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string{base && *base ? base : "/tmp"} + "/shardwire-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("temp_dir: mkdtemp failed in " + tmpl);
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string temp_dir::file(const std::string& name) const {
  return (path_ / name).string();
}

// -- test_ca ------------------------------------------------------------------

test_ca::test_ca(fs::path dir, std::string name)
    : dir_(std::move(dir)), name_(std::move(name)) {
  auto prefix = (dir_ / (name_ + ".ca")).string();
  cert_ = prefix + ".pem";
  key_ = prefix + ".key";
  config_ = prefix + ".cnf";
  auto req_config = prefix + ".req.cnf";
  write_file(req_config, "[ req ]\n"
                         "distinguished_name = dn\n"
                         "prompt = no\n"
                         "[ dn ]\n"
                         "CN = " +
                             name_ +
                             "\n"
                             "[ v3_ca ]\n"
                             "basicConstraints = critical, CA:TRUE\n"
                             "keyUsage = critical, keyCertSign, cRLSign\n"
                             "subjectKeyIdentifier = hash\n"
                             "authorityKeyIdentifier = keyid:always\n");
  // `openssl ca` signs the leaves: it alone sets arbitrary start and end
  // dates in OpenSSL 3.0 (x509 -req has -days only; -not_before is 3.4).
  write_file(prefix + ".index", "");
  fs::create_directories(prefix + ".issued");
  write_file(config_, "[ ca ]\n"
                      "default_ca = test_ca\n"
                      "[ test_ca ]\n"
                      "database = " +
                          prefix +
                          ".index\n"
                          "new_certs_dir = " +
                          prefix +
                          ".issued\n"
                          "rand_serial = yes\n"
                          "unique_subject = no\n"
                          "default_md = sha256\n"
                          "policy = any_name\n"
                          "copy_extensions = none\n"
                          "certificate = " +
                          cert_ +
                          "\n"
                          "private_key = " +
                          key_ +
                          "\n"
                          "[ any_name ]\n"
                          "commonName = supplied\n");
  std::vector<std::string> args = {
      "req",         "-x509", "-new",   "-config", req_config,
      "-extensions", "v3_ca", "-nodes", "-keyout", key_,
      "-out",        cert_,   "-days",  "3650",    "-sha256"};
  auto k = new_key_args("ec");
  args.insert(args.end(), k.begin(), k.end());
  openssl(dir_, args);
}

cert_pair test_ca::issue(const std::string& stem, const cert_spec& spec) {
  cert_pair out{(dir_ / (stem + ".pem")).string(),
                (dir_ / (stem + ".key")).string()};
  auto base = (dir_ / stem).string();
  auto req_config = base + ".req.cnf";
  auto csr = base + ".csr";
  auto ext = base + ".ext.cnf";
  write_file(req_config, "[ req ]\n"
                         "distinguished_name = dn\n"
                         "prompt = no\n"
                         "[ dn ]\n"
                         "CN = " +
                             spec.common_name + "\n");
  std::vector<std::string> args = {"req",      "-new",   "-config",
                                   req_config, "-nodes", "-keyout",
                                   out.key,    "-out",   csr};
  auto k = new_key_args(spec.key);
  args.insert(args.end(), k.begin(), k.end());
  openssl(dir_, args);
  std::string extensions = "[ leaf ]\n"
                           "basicConstraints = critical, CA:FALSE\n"
                           "subjectKeyIdentifier = hash\n"
                           "authorityKeyIdentifier = keyid\n";
  extensions += spec.key == "rsa"
                    ? "keyUsage = critical, digitalSignature, keyEncipherment\n"
                    : "keyUsage = critical, digitalSignature\n";
  std::vector<std::string> usages;
  if (spec.server_auth) usages.push_back("serverAuth");
  if (spec.client_auth) usages.push_back("clientAuth");
  if (!usages.empty())
    extensions += "extendedKeyUsage = " + join(usages) + "\n";
  if (!spec.alt_names.empty())
    extensions += "subjectAltName = " + join(spec.alt_names) + "\n";
  write_file(ext, extensions);
  using namespace std::chrono;
  auto now = system_clock::now();
  auto day = hours{24};
  system_clock::time_point from;
  system_clock::time_point to;
  switch (spec.validity) {
  case cert_validity::valid:
    from = now - minutes{1};
    to = now + day * spec.days;
    break;
  case cert_validity::expired:
    from = now - day * 2;
    to = now - day;
    break;
  case cert_validity::not_yet_valid:
    from = now + day;
    to = now + day * (1 + spec.days);
    break;
  }
  openssl(dir_, {"ca", "-batch", "-config", config_, "-in", csr, "-out",
                 out.cert, "-notext", "-extfile", ext, "-extensions", "leaf",
                 "-startdate", utc_time(from), "-enddate", utc_time(to)});
  return out;
}

std::string concat_pem(const std::string& out,
                       const std::vector<std::string>& parts) {
  std::string text;
  for (auto& p : parts) {
    auto part = slurp(p);
    if (part.empty()) throw std::runtime_error("concat_pem: cannot read " + p);
    if (part.back() != '\n') part += '\n';
    text += part;
  }
  write_file(out, text);
  return out;
}

} // namespace shardwire::test
