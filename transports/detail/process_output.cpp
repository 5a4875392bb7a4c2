#include "transports/detail/process_output.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"

#include <vector>

namespace shardwire::detail {

namespace {

int index_of(int32_t fd) {
  return fd == 2 ? 1 : 0;
}

} // namespace

caf::error process_output::open(const process_spec& spec) {
  spec_ = &spec;
  const std::optional<process_log_file>* specs[2] = {&spec.stdout_log,
                                                     &spec.stderr_log};
  for (int i = 0; i < 2; ++i) {
    const auto& s = *specs[i];
    if (!s) continue;
    if (auto err = logs_[i].open(s->path, s->max_bytes, s->backups))
      return make_errno_error(
          err.code(),
          spec.id + (i == 0 ? ": stdout_log " : ": stderr_log ") + s->path);
  }
  return {};
}

void process_output::on_data(pipe_data& msg, const forward_fn& forward) {
  int i = index_of(msg.fd);
  if (logs_[i].is_open())
    if (auto err = logs_[i].write(msg.bytes.view()); err && !log_failed_[i]) {
      log_failed_[i] = true;
      log::warning("process ", spec_->id, ": ", describe(err));
    }
  auto& partial = partial_[i];
  if (!spec_->split_lines) {
    forward(msg.fd, std::move(msg.bytes), std::move(msg.ticket));
    return;
  }
  auto text = msg.bytes.view();
  std::vector<buffer> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) break;
    if (partial.empty()) {
      lines.push_back(msg.bytes.slice(pos, nl - pos));
    } else {
      partial.append(text.substr(pos, nl - pos));
      lines.push_back(buffer::copy_of(partial));
      partial.clear();
    }
    pos = nl + 1;
  }
  partial.append(text.substr(pos));
  while (partial.size() >= spec_->max_line) {
    lines.push_back(buffer::copy_of(partial.substr(0, spec_->max_line)));
    partial.erase(0, spec_->max_line);
  }
  for (size_t k = 0; k < lines.size(); ++k)
    forward(msg.fd, std::move(lines[k]),
            k + 1 == lines.size() ? std::move(msg.ticket) : read_ticket{});
}

void process_output::on_end(int32_t fd, const forward_fn& forward) {
  auto& partial = partial_[index_of(fd)];
  if (partial.empty()) return;
  forward(fd, buffer::copy_of(partial), {});
  partial.clear();
}

} // namespace shardwire::detail
