// A pseudo-terminal for a child (subprocess_options::pty): the child sees a
// terminal, as under a terminal emulator, ssh or `script`; its output still
// arrives as messages.
//
// Guarantees:
//   - every standard stream left at stdio::pipe is the terminal's slave
//     side: isatty() holds, the terminal is the child's controlling
//     terminal (/dev/tty opens; the child leads a session of its own, so
//     its process group is its pid, as with new_process_group), and its
//     size is `rows` x `cols` from the first instruction (TIOCSWINSZ);
//   - what the terminal prints arrives as `pipe_data` on fd 1, stderr
//     included when it is on the terminal too (a terminal has one output),
//     with the terminal's own processing: "\n" written by the child arrives
//     as "\r\n", and input written to the child is echoed back unless the
//     child turns echo off (stty -echo, or raw mode);
//   - when the last process holding the terminal closes it, the output
//     pipe ends like a pipe does (the master's EIO is its end of file);
//   - closing the transport hangs up the terminal: the child gets SIGHUP,
//     as from a closed terminal window, and SIGKILL as without a terminal.
// A terminal has no end of input to close: `write_eof` sends nothing; write
// the EOF character ("\x04", Ctrl-D) where the child reads lines.
// stdout must be stdio::pipe (the terminal's output has to be read, or the
// child blocks once the terminal's buffer is full).
#pragma once

#include <cstdint>

namespace shardwire {

struct pty_options {
  uint16_t rows = 24;
  uint16_t cols = 80;
};

} // namespace shardwire
