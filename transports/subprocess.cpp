#include "transports/subprocess.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/await_result.hpp"
#include "transports/detail/subprocess_transport.hpp"

#include <string_view>
#include <unordered_map>

extern char** environ;

namespace shardwire {

namespace {

detail::child_stream to_child_stream(stdio x) {
  switch (x) {
  case stdio::pipe:
    return detail::child_stream::pipe;
  case stdio::inherit:
    return detail::child_stream::inherit;
  case stdio::devnull:
    return detail::child_stream::devnull;
  case stdio::stdout_:
    return detail::child_stream::merge;
  }
  return detail::child_stream::inherit;
}

// `base` (or the inherited environment) with `merge` applied in order: the
// last entry for a name decides, in one pass over each list.
std::vector<std::string>
merged_env(const std::optional<std::vector<std::string>>& base,
           const std::vector<std::string>& merge) {
  auto name_of = [](const std::string& entry) {
    return std::string_view{entry}.substr(0, entry.find('='));
  };
  std::unordered_map<std::string_view, const std::string*> last;
  for (const auto& m : merge)
    last[name_of(m)] = &m;
  std::vector<std::string> out;
  auto keep = [&](std::string entry) {
    if (!last.count(name_of(entry))) out.push_back(std::move(entry));
  };
  if (base) {
    for (const auto& e : *base)
      keep(e);
  } else {
    for (char** e = environ; *e; ++e)
      keep(*e);
  }
  for (const auto& m : merge)
    if (last[name_of(m)] == &m && m.find('=') != std::string::npos)
      out.push_back(m);
  return out;
}

} // namespace

void async_subprocess_exec(runtime& rt, std::vector<std::string> argv,
                           subprocess_protocol_factory factory,
                           subprocess_options opts, subprocess_callback done) {
  auto fail = [&](std::string what) {
    if (done) done(make_error(sw_errc::invalid_argument, std::move(what)));
  };
  if (argv.empty()) return fail("subprocess_exec needs a program");
  if (opts.stdin_ == stdio::stdout_ || opts.stdout_ == stdio::stdout_)
    return fail("only stderr can go to stdout");
  if (opts.kill_group_on_exit && !opts.new_process_group && !opts.pty)
    return fail("kill_group_on_exit needs new_process_group");
  detail::child_request req;
  req.argv = std::move(argv);
  req.cwd = opts.cwd;
  for (const auto& m : opts.env_merge)
    if (m.empty() || m.front() == '=')
      return fail("env_merge: entry '" + m + "' has no name");
  if (opts.env_merge.empty())
    req.env = opts.env;
  else
    req.env = merged_env(opts.env, opts.env_merge);
  req.limits = opts.limits;
  req.in = to_child_stream(opts.stdin_);
  req.out = to_child_stream(opts.stdout_);
  req.err = to_child_stream(opts.stderr_);
  req.new_process_group = opts.new_process_group;
  req.pty = opts.pty;
  auto& s = opts.shard ? rt.shard_at(*opts.shard % rt.shard_count())
                       : rt.pick_shard();
  spawn_on<detail::subprocess_transport>(
      s, std::move(req), std::move(factory), std::move(opts),
      stream_settings::from(rt), std::move(done));
}

void async_subprocess_shell(runtime& rt, std::string cmd,
                            subprocess_protocol_factory factory,
                            subprocess_options opts, subprocess_callback done) {
  async_subprocess_exec(rt, {"/bin/sh", "-c", std::move(cmd)},
                        std::move(factory), std::move(opts), std::move(done));
}

namespace {

caf::expected<subprocess>
await_subprocess(const std::function<void(subprocess_callback)>& start) {
  return detail::await_result<subprocess>(start, "subprocess call");
}

} // namespace

caf::expected<subprocess> subprocess_exec(runtime& rt,
                                          std::vector<std::string> argv,
                                          subprocess_protocol_factory factory,
                                          subprocess_options opts) {
  return await_subprocess([&](subprocess_callback cb) {
    async_subprocess_exec(rt, std::move(argv), std::move(factory),
                          std::move(opts), std::move(cb));
  });
}

caf::expected<subprocess> subprocess_shell(runtime& rt, std::string cmd,
                                           subprocess_protocol_factory factory,
                                           subprocess_options opts) {
  return await_subprocess([&](subprocess_callback cb) {
    async_subprocess_shell(rt, std::move(cmd), std::move(factory),
                           std::move(opts), std::move(cb));
  });
}

} // namespace shardwire
