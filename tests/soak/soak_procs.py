"""Server processes of the soak run: start, readiness, sampling, stop.

Every server runs in its own session (and so its own process group) so that
a terminal's Ctrl-C reaches only the harness, which then stops the servers
itself, and so that the end-of-run check can ask "is anything of that group
still alive?". Each child also gets PR_SET_PDEATHSIG=SIGKILL: if the harness
is killed (a CTest timeout sends SIGKILL), its servers die with it instead of
outliving the test.
"""
import ctypes
import os
import signal
import subprocess
import time

from harness import LineQueue

PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: no safety net, still works
    _prctl = None


def _child_setup():
    # Runs in the child between fork and exec; the function was resolved in
    # the parent, so nothing here allocates or imports.
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """A demo server process whose output lines are queued by threads.

    Popen is called from the main thread only: the death signal is tied to
    the thread that forked, so a child forked by a short-lived thread would
    be killed when that thread ends.
    """

    def __init__(self, name, argv, *, fd_slack, keep_stdout=True,
                 stdin=False):
        self.name = name
        self.argv = argv
        self.fd_slack = fd_slack  # allowed fd swing after warm-up
        self.samples = []         # (t, rss_kib, fds)
        self.idle_fds = None      # fds before any client connected
        self.final_fds = None     # fds after every client left
        self.exit_code = None
        self.exit_seconds = None
        print(f'  $ {" ".join(argv)}', flush=True)
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=_child_setup)
        self.pgid = self.proc.pid  # a new session leader leads its group
        streams = [self.proc.stderr] + ([self.proc.stdout]
                                        if keep_stdout else [])
        self.output = LineQueue(*streams, keep=40)

    @property
    def tail(self):
        """The last lines of output, for diagnostics."""
        return self.output.tail(40)

    def wait_line(self, pattern, timeout=15.0):
        """The first match of `pattern` in a coming output line, or None."""
        return self.output.wait_line(pattern, timeout)

    def alive(self):
        return self.proc.poll() is None

    def sample(self, t):
        """Appends (t, VmRSS KiB, open fds); None when the process is gone."""
        s = read_usage(self.proc.pid)
        if s is not None:
            self.samples.append((t, s[0], s[1]))
        return s

    def stop(self, timeout):
        """SIGINT, then waits; returns the exit code or None (then killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.exit_code = None
            kill_group(self.pgid)
            self.proc.wait()
        self.exit_seconds = time.monotonic() - t0
        return self.exit_code


def read_usage(pid):
    """(VmRSS in KiB, number of open fds) of a live process, or None."""
    try:
        rss = None
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    rss = int(line.split()[1])
                    break
        fds = len(os.listdir(f'/proc/{pid}/fd'))
        return (rss, fds) if rss is not None else None
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def group_members(pgids):
    """Live pids (zombies included) whose process group is one of pgids."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        fields = stat[stat.rfind(')') + 2:].split()
        if int(fields[2]) in pgids:
            found.append((int(entry), fields[0]))
    return found


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
