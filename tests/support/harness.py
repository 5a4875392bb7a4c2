"""What the out-of-process test scripts share: checks, free ports and the
output lines of a child process.

A script imports it after putting this folder on its path:

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                    'support'))
    from harness import check, failures, free_ports, LineQueue, Proc
"""

import os
import queue
import random
import re
import signal
import socket
import subprocess
import threading
import time

# Every failed check, in order; a script exits 1 when it is not empty.
failures = []


def marked_processes(mark, token):
    """Live (not zombie) processes whose environment holds mark=token:
    pid -> command name. Scripts start their programs with such a variable
    to find everything those started, whatever became of the parent."""
    needle = f'{mark}={token}'.encode()
    out = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if needle not in f.read().split(b'\0'):
                    continue
            with open(f'/proc/{pid}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        if stat.rsplit(')', 1)[1].split()[0] != 'Z':
            out[int(pid)] = comm
    return out


def check(cond, what):
    """Prints `ok: what` or `FAILED: what` and records a failure."""
    print(f'  {"ok" if cond else "FAILED"}: {what}', flush=True)
    if not cond:
        failures.append(what)
    return cond


def run_bounded(argv, timeout, what=None):
    """Runs `argv` to its end, stdin closed, output captured as text.
    Returns the CompletedProcess, or None after a failed check when it
    outlives `timeout` seconds (it is killed then)."""
    print(f'  $ {" ".join(argv)}', flush=True)
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        check(False, f'{what or " ".join(argv)}: ends within {timeout} s')
        return None


def _ephemeral_low():
    """The first port of the kernel's ephemeral range, or None if unknown."""
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def free_ports(n, kind=socket.SOCK_STREAM):
    """n distinct loopback ports free right now (for programs that cannot
    take port 0). All are bound at once, so they differ.

    They are drawn from below the kernel's ephemeral range: a port the
    kernel hands out by itself (port 0, an outgoing connection) of any other
    test running beside this one can then never take a port chosen here
    between this check and the program's own bind (a CI run once lost a
    kv_cluster node's port that way)."""
    low = _ephemeral_low()
    rng = random.Random()
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            tries = [rng.randrange(10000, low) for _ in range(200)] \
                if low is not None and low > 11000 else []
            for port in tries + [0]:  # 0: the kernel's choice, as a last resort
                try:
                    s.bind(('127.0.0.1', port))
                    break
                except OSError:
                    if port == 0:
                        raise
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def free_port(kind=socket.SOCK_STREAM):
    return free_ports(1, kind)[0]


class LineQueue:
    """The lines of a child's text streams, read by daemon threads, so a
    wait for a line never blocks past its deadline.

    With several streams (stdout and stderr) their lines are merged in the
    order they arrive. `lines` keeps every line, or the last `keep` ones (for
    diagnostics and for checks after exit); `wait_line` consumes them in
    order.
    """

    def __init__(self, *streams, keep=None):
        self.lines = []
        self._keep = keep
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._open = len(streams)
        self._threads = [threading.Thread(target=self._pump, args=(s,),
                                          daemon=True) for s in streams]
        for t in self._threads:
            t.start()

    def _pump(self, stream):
        for line in stream:
            line = line.rstrip('\n')
            with self._lock:
                self.lines.append(line)
                if self._keep is not None and len(self.lines) > self._keep:
                    del self.lines[:-self._keep]
            self._queue.put(line)
        with self._lock:
            self._open -= 1
            if self._open == 0:
                self._queue.put(None)

    def tail(self, n=5):
        with self._lock:
            return self.lines[-n:]

    def wait_line(self, pattern, timeout):
        """The match of regex `pattern` in the first coming line that has
        one; None at the deadline or once every stream has ended."""
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self._queue.put(None)  # later waits end at once too
                return None
            m = re.search(pattern, line)
            if m:
                return m

    def join(self, timeout):
        """Waits (up to `timeout` seconds each) until the streams ended."""
        for t in self._threads:
            t.join(timeout)


class Proc:
    """A child process whose stdout and stderr lines are queued by threads
    (`out`, `err`: LineQueue). stdin is /dev/null unless given."""

    def __init__(self, argv, stdin=subprocess.DEVNULL):
        print('  $ ' + ' '.join(argv), flush=True)
        self.proc = subprocess.Popen(argv, stdin=stdin,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = LineQueue(self.proc.stdout)
        self.err = LineQueue(self.proc.stderr)

    def stop(self, sig=signal.SIGINT, timeout=10.0):
        """Sends `sig` and waits; kills it after `timeout` s. Returns the
        exit code, or None when it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
