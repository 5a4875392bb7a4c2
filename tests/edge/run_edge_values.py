#!/usr/bin/env python3
"""Every demo and benchmark under edge values and stop signals (issue 15).

For each program, its options are read from its own `--long-help` (the
global group, the shardwire.* group and the program's own groups; CAF's
internal groups such as scheduler.* are left out), so a new option is
covered without touching this file. Each option gets the edge values of
its type, one at a time, on top of a base command line that makes a valid
run short (a server on port 0, a benchmark with a tiny load):

  integers  0, 1, -1, the type's maximum, maximum + 1, garbage, empty
  reals     0, -1, 1e308, nan, inf, garbage, empty
  strings   empty, garbage, 5,000 characters
  lists     empty, [], garbage, one 5,000-character element
  flags     set, =garbage

plus the base line alone, a stray positional argument and an unknown
option. Every run gets SIGINT or SIGTERM (chosen by a seeded RNG) after a
random delay of 0 to --delay-max seconds unless it has exited by then. A
program still without a handler for that signal at that moment (still in
the loader or starting its runtime) gets up to --handler-wait more seconds
to install one; then the signal is sent regardless.

A run passes when the program
  * exits 0, or exits 1 with an `error:` line on stderr that names the
    option it was given (or, after our signal, any `error:` line);
  * is not ended by a signal, prints no sanitizer report (ASan, LSan,
    UBSan) and no libc/C++ abort message;
  * exits within --bound seconds of the signal (else: a hang);
  * leaves no process behind: each program starts in its own process
    group with a marker in its environment, and after it exits neither the
    group nor any process carrying the marker may remain (they are killed
    and the run fails).

Peers are provided where a program needs one, on 127.0.0.1 only: a TCP, a
TLS and a UDP echo server (threads here) for the clients and chaos_proxy,
a kv_cluster storage node for `kv_cluster front` and a kv_cluster replica
for `kv_cluster qfront`. The TLS demos get a CA and a server certificate
made with the openssl command (without it they are left out, with a line
saying so). A program that writes files (`kv_cluster replica --data`) gets
a new empty folder per run.

The runs are sampled with a seeded RNG when --values / --common-values
limit them; the seed is printed and SEED=<n> (or --seed) repeats a run
exactly. The last line is `N passed, M failed`.

  run_edge_values.py [--seed N] [--jobs 4] [--values all|K]
                     [--common-values all|K] BUILD_DIR_OR_PROGRAM...
"""
import argparse
import concurrent.futures
import ctypes
import os
import random
import re
import shlex
import signal
import socket
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

# -- the programs -------------------------------------------------------------


class spec:
    """One program (or one mode of it) and the base line of a valid run.

    `base` may use {tcp_echo}, {udp_echo}, {tls_echo}, {kv_node},
    {kv_replica} (ports of the peers started here), {kv_cluster} (the path
    of that program), {tls_cert}, {tls_key}, {tls_ca} (certificate files
    made here) and {run_dir} (a new empty folder for each run: each use
    in a run's base line is another folder)."""

    def __init__(self, name, base=(), mode=None, child_status=False,
                 skip=(), error_status=(1,)):
        self.name = name
        # Options not varied, each with the reason in SPECS.
        self.skip = set(skip)
        self.mode = mode
        self.base = list(base)
        # The program exits with the status of a child it runs (any code a
        # shell would give: 0-126 from the child, 127 not found).
        self.child_status = child_status
        # The statuses that mean "refused": 1 everywhere, plus a program's
        # own documented ones; each still needs an error line naming the
        # option or its value.
        self.error_status = tuple(error_status)

    @property
    def label(self):
        return self.name + (" " + self.mode if self.mode else "")


SPECS = [
    spec("tcp_echo_server", ["--host=127.0.0.1", "--port=0", "--quiet"]),
    spec("tcp_echo_client",
         ["--host=127.0.0.1", "--port={tcp_echo}", "--timeout-ms=3000"]),
    spec("tls_echo_server", ["--host=127.0.0.1", "--port=0", "--quiet",
                             "--cert={tls_cert}", "--key={tls_key}"]),
    spec("tls_echo_client",
         ["--host=127.0.0.1", "--port={tls_echo}", "--ca={tls_ca}",
          "--timeout-ms=3000"]),
    spec("socketpair_echo"),
    spec("tour"),
    spec("udp_echo_server", ["--host=127.0.0.1", "--port=0"]),
    spec("udp_echo_client",
         ["--host=127.0.0.1", "--port={udp_echo}", "--timeout-ms=3000"]),
    spec("subprocess_date", child_status=True),
    spec("kv_cluster", ["--host=127.0.0.1", "--port=0"], mode="node"),
    spec("kv_cluster",
         ["--host=127.0.0.1", "--port=0", "--nodes=127.0.0.1:{kv_node}"],
         mode="front"),
    # The replicated store's processes: a replica with its durable file
    # (one per run: runs go in parallel), a qfront on the replica here.
    spec("kv_cluster",
         ["--host=127.0.0.1", "--port=0", "--data={run_dir}/replica.log"],
         mode="replica"),
    spec("kv_cluster",
         ["--host=127.0.0.1", "--port=0",
          "--replicas=127.0.0.1:{kv_replica}"],
         mode="qfront"),
    # --worker is the crash simulator the fleet supervises: it exits 1 or
    # aborts on purpose (the fleet runs it, and is tested with it).
    spec("fleet", ["--workers=2", "--duration-ms=3000"], skip=["worker"]),
    spec("netsim_demo"),
    # An empty history: linearizable, checked at once. A file it can open
    # but not read as a history exits 2 ("undecided", demos/lincheck.cpp),
    # which a random --history value can name (a file another run left).
    spec("lincheck", ["--history=/dev/null"], error_status=(1, 2)),
    spec("chaos_proxy",
         ["--listen=127.0.0.1:0", "--upstream=127.0.0.1:{tcp_echo}",
          # Never the default 8474: runs go in parallel.
          "--api=127.0.0.1:0"]),
    spec("echo_bench",
         ["--suite=tcp", "--servers=asio", "--shard-counts=1", "--rounds=1",
          "--duration=0.05", "--idle=0", "--connections=2"]),
    spec("kv_bench",
         ["--kv={kv_cluster}", "--node-counts=1", "--connections=1",
          "--seconds=1"]),
    spec("spawn_bench", ["--count=20", "--inflight=4", "--churn=20"]),
    spec("udp_batch_bench", ["--seconds=1", "--count=1000"]),
    # --role=server is the process remote_bench starts for itself (it waits
    # for a signal); --baseline=erlang would start Erlang's epmd, a daemon
    # no test may leave behind.
    spec("remote_bench",
         ["--baseline=none", "--callers=1", "--payload=64", "--seconds=0.2"],
         skip=["role", "baseline"]),
]

# Option groups that are CAF's own machinery, not the program's interface.
CAF_GROUPS = {"caf", "logger", "middleman", "opencl", "openssl", "scheduler",
              "stream", "work-stealing"}
# CAF's built-in options: help texts and config files, not program input.
SKIPPED_OPTIONS = {"help", "long-help", "dump-config", "config-file"}
# Options every program shares through runtime_config; --common-values
# samples them per program (the code that checks them is the same).
COMMON_OPTIONS = {"shards", "log-level"}

# -- options and their edge values --------------------------------------------

INT_MAX = {
    "uint8": 2**8 - 1, "uint16": 2**16 - 1, "uint32": 2**32 - 1,
    "uint64": 2**64 - 1, "int8": 2**7 - 1, "int16": 2**15 - 1,
    "int32": 2**31 - 1, "int64": 2**63 - 1,
}
LONG = "x" * 5000

OPTION_LINE = re.compile(
    r"^\s+(?:\((?:-\S+\|)*--(?P<a>[\w.-]+)\)|--(?P<b>[\w.-]+))"
    r"(?:=<(?P<t1>[^>]*)>| <(?P<t2>[^>]*)>)?\s*:")
GROUP_LINE = re.compile(r"^(\S.*) options:\s*$")


def parse_help(text):
    """(name, type) for every option of the groups we test; type None for a
    flag."""
    opts, group = [], None
    for line in text.splitlines():
        g = GROUP_LINE.match(line)
        if g:
            group = g.group(1)
            continue
        m = OPTION_LINE.match(line)
        if not m or group in CAF_GROUPS:
            continue
        name = m.group("a") or m.group("b")
        if name in SKIPPED_OPTIONS:
            continue
        opts.append((name, m.group("t1") or m.group("t2")))
    return opts


def edge_values(typ):
    """Command-line fragments for an option of type `typ` ("--NAME" is
    prefixed by the caller): each is what follows the name."""
    if typ is None:
        return ["", "=x1"]
    t = typ.replace("_t", "")
    if t in INT_MAX:
        top = INT_MAX[t]
        return ["=0", "=1", "=-1", f"={top}", f"={top + 1}", "=x1", "="]
    if t in ("real64", "real32", "double", "float"):
        return ["=0", "=-1", "=1e308", "=nan", "=inf", "=x1", "="]
    if t.startswith("list of"):
        return ["=", "=[]", "=x1", f'=["{LONG}"]']
    if t == "timespan":
        return ["=0s", "=-1s", "=x1", "="]
    # strings and anything unknown
    return ["=", "=x1", "=" + LONG]


# -- peers --------------------------------------------------------------------


class tcp_echo(socketserver.BaseRequestHandler):
    """The asyncio documentation's echo server: echoes the first data it
    receives, then closes (what tcp_echo_client expects)."""

    def handle(self):
        self.request.settimeout(20)
        try:
            data = self.request.recv(65536)
            if data:
                self.request.sendall(data)
        except OSError:
            pass


class threaded_tcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_tls_files(dir):
    """A CA and a server certificate for 127.0.0.1 / localhost, made with
    the openssl command in `dir`: {tls_cert}, {tls_key}, {tls_ca}."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=dir, check=True,
                       capture_output=True, timeout=60)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
            "/CN=shardwire edge ca", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=server")
    with open(os.path.join(dir, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "server.ext")
    return {"tls_cert": os.path.join(dir, "server.pem"),
            "tls_key": os.path.join(dir, "server.key"),
            "tls_ca": os.path.join(dir, "ca.pem")}


def start_tls_echo(cert, key):
    """tcp_echo over TLS (what tls_echo_client expects: the echo, then
    close_notify). A failed handshake just ends that connection."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    class handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(20)
            try:
                conn = ctx.wrap_socket(self.request, server_side=True)
                data = conn.recv(65536)
                if data:
                    conn.sendall(data)
                conn.unwrap()  # close_notify
            except (OSError, ssl.SSLError, ValueError):
                pass

    srv = threaded_tcp(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def start_udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def loop():
        while True:
            try:
                data, peer = sock.recvfrom(65536)
                sock.sendto(data, peer)
            except OSError:
                return

    threading.Thread(target=loop, daemon=True).start()
    return sock


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kv_peer(kv_cluster, mode, env):
    """A kv_cluster `mode` process (a storage node for `kv_cluster front`,
    a memory-only replica for `kv_cluster qfront`); returns (proc, port)
    once the port accepts connections (its output goes nowhere; the port is
    the readiness signal)."""
    port = free_port()
    proc = subprocess.Popen([kv_cluster, mode, "--host=127.0.0.1",
                             f"--port={port}"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"kv_cluster {mode} did not start")


# -- processes ----------------------------------------------------------------

MARKER = "SHARDWIRE_EDGE_RUN"

SANITIZER = re.compile(
    r"(ERROR|WARNING): (Address|Leak|Thread|Memory|UndefinedBehavior)"
    r"Sanitizer|runtime error: |SUMMARY: \w+Sanitizer|double free"
    r"|free\(\): invalid|corrupted (size|double-linked)|terminate called"
    r"|Assertion [`'].*' failed|stack smashing detected|Segmentation fault")


def become_subreaper():
    """Orphans of the programs become our children (instead of PID 1's), so
    that they can be found and reaped here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def marked_processes(marker):
    """PIDs of live (non-zombie) processes whose environment carries
    `marker`."""
    needle = f"{MARKER}={marker}\0".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read() + b"\0":
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def handles(pid, sig):
    """Whether process `pid` has a handler for `sig`, or ignores it (or is
    gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("SigCgt:", "SigIgn:")) and \
                        int(line.split()[1], 16) >> (sig - 1) & 1:
                    return True
    except OSError:
        return True
    return False


def reap_group(pgid):
    """Reaps orphans of group `pgid` that were handed to us."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def group_alive(pgid):
    reap_group(pgid)
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def leftovers(pgid, marker, grace):
    """Processes of the run still alive `grace` seconds after its exit."""
    deadline = time.monotonic() + grace
    while True:
        marked = marked_processes(marker)
        alive = group_alive(pgid)
        if not marked and not alive:
            return []
        if time.monotonic() >= deadline:
            return sorted(set(marked) | ({pgid} if alive else set()))
        time.sleep(0.05)


def describe(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = "its process group"
        out.append(f"{pid} ({cmd[:100].strip()})")
    return ", ".join(out)


LIBC_FRAME = r"_|\?\?|std::|do_futex|epoll_wait|start_thread|clone"


def thread_stacks(pid):
    """Where a hung program's threads wait, for the failure report: the
    innermost frames of each thread, one line per thread. Empty when gdb is
    not installed (the report then has the command line only)."""
    try:
        out = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 12"],
            capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    threads, frames = [], []
    for line in out.splitlines():
        line = line.replace("(anonymous namespace)", "{anon}")
        if line.startswith("Thread "):
            if frames:
                threads.append(" < ".join(frames))
            frames = []
        m = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?([^(]+?)\s*\(", line)
        # libc's and the standard library's frames say only "waits".
        if m and len(frames) < 5 and not re.match(LIBC_FRAME, m.group(1)):
            frames.append(m.group(1).split("<")[0])
    if frames:
        threads.append(" < ".join(frames))
    return "\n".join(f"       thread: {t}" for t in threads)


def kill_all(pgid, marker):
    for pid in marked_processes(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    time.sleep(0.1)
    reap_group(pgid)


class capture:
    """Drains a pipe on a thread, keeping the head and tail."""

    def __init__(self, pipe):
        self.head, self.tail, self.size = b"", b"", 0
        self.thread = threading.Thread(target=self._run, args=(pipe,),
                                       daemon=True)
        self.thread.start()

    def _run(self, pipe):
        while True:
            chunk = pipe.read1(65536) if hasattr(pipe, "read1") else \
                pipe.read(65536)
            if not chunk:
                break
            self.size += len(chunk)
            if len(self.head) < 65536:
                self.head += chunk[:65536 - len(self.head)]
            self.tail = (self.tail + chunk)[-65536:]
        pipe.close()

    def text(self):
        self.thread.join(timeout=5)
        if self.size <= len(self.head):
            data = self.head
        else:
            data = self.head + b"\n[...]\n" + self.tail
        return data.decode(errors="replace")


# -- one run ------------------------------------------------------------------


class job:
    def __init__(self, program, label, argv, option, value, sig, delay):
        self.program = program  # its spec
        self.label = label      # what is varied, for the report
        self.argv = argv
        self.option = option    # name to find in an error line, or None
        self.value = value
        self.sig = sig
        self.delay = delay
        self.failure = None
        self.seconds = 0.0
        self.handled = True  # it had a handler for `sig` when it came

    def repro(self):
        cmd = shlex.join(a if len(a) < 200 else a[:20] + "..." + a[-20:]
                         for a in self.argv)
        if len(cmd) > 600:
            cmd = cmd[:600] + "..."
        return (f"{cmd} & sleep {self.delay:.2f}; "
                f"kill -{signal.Signals(self.sig).name[3:]} $!")


def error_lines(stderr):
    return [line for line in stderr.splitlines() if "error:" in line]


def names(line, option, value):
    """Whether an error line says which input it refuses: the option's name
    (a dotted one may be split, as in `--down.*: ... reset-after-ms`), or
    the value itself as a token (`cannot connect to 127.0.0.1:1`)."""
    if option in line or all(part in line for part in option.split(".")):
        return True
    if value and value.startswith("="):
        # A long value is matched by its first 40 characters, which the
        # rest of the value follows in the line: no end boundary then.
        v = value[1:][:40]
        end = r"(?![\w.])" if len(value) - 1 <= 40 else ""
        if v and re.search(r"(?<![\w.])" + re.escape(v) + end, line):
            return True
    return False


def judge(j, rc, signalled, stderr):
    """The reason `j` failed, or None."""
    m = SANITIZER.search(stderr)
    if m:
        start = stderr.rfind("\n", 0, m.start()) + 1
        lines = stderr[start:].splitlines()[:5]
        return "sanitizer/abort report: " + " | ".join(
            line.strip()[:160] for line in lines)
    if rc < 0:
        return f"killed by {signal.Signals(-rc).name}" + (
            "" if -rc != j.sig else " (the signal we sent" +
            ("" if j.handled else ", which it had no handler for") + ")") + \
            f"; stderr tail: {stderr[-200:]!r}"
    if rc == 0:
        return None
    errors = error_lines(stderr)
    if j.program.child_status and 0 < rc <= 127:
        return None  # the child's own status, passed on (127: not found)
    if rc not in j.program.error_status:
        codes = " or ".join(str(c) for c in j.program.error_status)
        return f"exit code {rc} (expected 0, or {codes} with an error " \
               f"line)" + (
            f"; stderr: {stderr[-300:]!r}" if stderr else "")
    if not errors:
        return f"exit code {rc} without an 'error:' line; stderr: " \
               f"{stderr[-300:]!r}"
    if signalled or j.option is None:
        return None
    if any(names(line, j.option, j.value) for line in errors):
        return None
    return f"error line names neither {j.option!r} nor its value: " \
           f"{errors[0][:300]!r}"


def run(j, cwd, env, bound, grace, handler_wait):
    marker = f"{os.getpid()}-{id(j)}"
    run_env = dict(env)
    run_env[MARKER] = marker
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(j.argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=run_env,
                                start_new_session=True)
    except OSError as e:
        j.failure = f"cannot start: {e}"
        return j
    out, err = capture(proc.stdout), capture(proc.stderr)
    signalled, hung = False, False
    try:
        proc.wait(timeout=j.delay)
    except subprocess.TimeoutExpired:
        # A signal that comes before the program could install a handler
        # (still in the loader, or CAF starting) tests nothing: give it up
        # to `handler_wait` s to install one. One that never does fails.
        until = time.monotonic() + handler_wait
        while proc.poll() is None and not handles(proc.pid, j.sig) and \
                time.monotonic() < until:
            time.sleep(0.01)
    if proc.returncode is None:
        j.handled = handles(proc.pid, j.sig)
        signalled = True
        try:
            proc.send_signal(j.sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            hung = True
            stacks = thread_stacks(proc.pid)
            kill_all(proc.pid, marker)
            proc.wait()
    j.seconds = time.monotonic() - t0
    stderr = err.text()
    out.text()
    left = [] if hung else leftovers(proc.pid, marker, grace)
    if left:
        what = describe(left)
        kill_all(proc.pid, marker)
        j.failure = f"left processes behind: {what}"
    if hung:
        j.failure = (f"hang: still running {bound:.0f} s after "
                     f"{signal.Signals(j.sig).name}; stderr tail: "
                     f"{stderr[-300:]!r}" + (f"\n{stacks}" if stacks else ""))
    elif not j.failure:
        j.failure = judge(j, proc.returncode, signalled, stderr)
    elif proc.returncode < 0 or SANITIZER.search(stderr):
        j.failure += "; and " + judge(j, proc.returncode, signalled, stderr)
    return j


# -- the plan -----------------------------------------------------------------


def find_program(paths, name):
    for p in paths:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            if os.path.basename(p) == name:
                return p
            continue
        for sub in ("", "demos", "bench", "bin"):
            cand = os.path.join(p, sub, name)
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return os.path.abspath(cand)
    return None


def options_of(path, mode, env):
    argv = [path] + ([mode] if mode else []) + ["--long-help"]
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60, env=env)
    return parse_help(res.stdout + res.stderr), res


def option_of(arg):
    """The option name of a base argument like --port=0."""
    return arg[2:].split("=", 1)[0] if arg.startswith("--") else None


def sample(rng, values, limit):
    if limit is None or limit >= len(values):
        return list(values)
    return rng.sample(values, limit)


class fresh_dir:
    """Formats as a new empty folder under `root` each time ({run_dir})."""

    def __init__(self, root):
        self.root = root

    def __format__(self, spec):
        return tempfile.mkdtemp(prefix="run-", dir=self.root)


def plan(sp, path, opts, rng, args, subst):
    prefix = [path] + ([sp.mode] if sp.mode else [])

    def base_line(without=None):
        # Formatted per run, so that each run gets its own {run_dir}.
        return [a.format(**subst) for a in sp.base
                if without is None or option_of(a) != without]

    cases = [("base line", base_line(), None, None)]
    # Twin options in two groups (chaos_proxy's up.X and down.X) are parsed
    # by the same code: each edge value goes to one of the two, at random.
    twins = {}
    for name, typ in opts:
        if "." in name and not name.startswith("shardwire."):
            twins.setdefault((name.split(".", 1)[1], typ), []).append(name)
    owner = {}
    for (key, typ), group in sorted(twins.items()):
        for frag in edge_values(typ):
            owner[(key, frag)] = rng.choice(group)
    for name, typ in opts:
        if name in sp.skip:
            continue
        common = name in COMMON_OPTIONS or name.startswith("shardwire.")
        limit = args.common_values if common else args.values
        key = name.split(".", 1)[1] if "." in name else None
        values = [f for f in edge_values(typ)
                  if owner.get((key, f), name) == name]
        for frag in sample(rng, values, limit):
            argv = base_line(without=name)
            argv.append("--" + name + frag)
            cases.append((f"--{name}{frag[:24]}", argv, name, frag))
    cases.append(("stray argument", base_line() + ["stray-arg"], "stray-arg",
                  None))
    cases.append(("unknown option", base_line() + ["--no-such-option=1"],
                  "no-such-option", None))
    jobs = []
    for label, argv, name, frag in cases:
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        delay = rng.uniform(0, args.delay_max)
        jobs.append(job(sp, label, prefix + argv, name, frag, sig, delay))
    return jobs


def limit_arg(text):
    return None if text == "all" else int(text)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+",
                    help="build directories (demos/, bench/ below them) or "
                         "program paths")
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("SEED", "0")) or None)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--values", type=limit_arg, default=None,
                    help="edge values per program option: all or K sampled")
    ap.add_argument("--common-values", type=limit_arg, default=2,
                    help="edge values per shared runtime option (--shards, "
                         "--log-level, --shardwire.*) per program")
    ap.add_argument("--delay-max", type=float, default=1.5,
                    help="the stop signal comes after 0 to this many s")
    ap.add_argument("--bound", type=float, default=10,
                    help="seconds a program has to exit after the signal")
    ap.add_argument("--handler-wait", type=float, default=3,
                    help="seconds to wait for the program's handler of the "
                         "signal before sending it anyway")
    ap.add_argument("--grace", type=float, default=3,
                    help="seconds its children have to go after it exits")
    ap.add_argument("--only", action="append", default=[],
                    help="test only these programs (repeatable)")
    ap.add_argument("--allow-missing", action="store_true",
                    help="skip programs that are not built")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    print(f"edge values: seed {seed} (SEED={seed} or --seed={seed} repeats "
          f"this run)", flush=True)
    become_subreaper()
    # A shell without job control starts background commands with SIGINT
    # ignored, and exec passes "ignored" on: every program would then keep
    # ignoring the signal this script sends, and hang for nothing. The
    # programs get the default dispositions, as from a terminal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)

    # What `make asan` sets, for a run of this script alone: the project's
    # suppressions of known CAF 0.17 reports (tests/sanitizers/ubsan.supp,
    # lsan.supp).
    env = dict(os.environ)
    if "TSAN_OPTIONS" in env and "report_thread_leaks" not in env["TSAN_OPTIONS"]:
        # A program stopped by a signal at a random moment may exit while a
        # thread it started is still running (spawn_bench's CAF multiplexer
        # under SIGTERM): TSan calls that a thread leak; it is no race.
        env["TSAN_OPTIONS"] += ":report_thread_leaks=0"
    supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "sanitizers", "ubsan.supp")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    # CAF's io module's known leak report (tests/sanitizers/lsan.supp).
    lsan = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "sanitizers", "lsan.supp")
    env.setdefault("LSAN_OPTIONS", f"suppressions={os.path.normpath(lsan)}")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:"
                   f"suppressions={os.path.normpath(supp)}")

    specs = [s for s in SPECS
             if not args.only or s.name in args.only or s.label in args.only]
    failed_setup = []
    programs = {}
    for s in specs:
        path = find_program(args.paths, s.name)
        if path is None:
            if not args.allow_missing:
                failed_setup.append(f"{s.label}: not found in {args.paths}")
            continue
        programs[s.label] = path

    tls_dir = tempfile.TemporaryDirectory(prefix="sw-edge-tls-")
    # Below it, a new folder for each run that uses {run_dir}.
    run_root = tempfile.TemporaryDirectory(prefix="sw-edge-runs-")
    tls_files = {"tls_cert": "", "tls_key": "", "tls_ca": ""}
    tls = None
    if any(label.startswith("tls_echo") for label in programs):
        if shutil.which("openssl") is None:
            print("tls_echo_server, tls_echo_client: left out (no openssl "
                  "command to make their certificates)", flush=True)
            programs = {k: v for k, v in programs.items()
                        if not k.startswith("tls_echo")}
        else:
            tls_files = make_tls_files(tls_dir.name)
            tls = start_tls_echo(tls_files["tls_cert"], tls_files["tls_key"])

    tcp = threaded_tcp(("127.0.0.1", 0), tcp_echo)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    udp = start_udp_echo()
    subst = {"tcp_echo": tcp.server_address[1],
             "udp_echo": udp.getsockname()[1],
             "tls_echo": tls.server_address[1] if tls else 1,
             **tls_files,
             "kv_cluster": find_program(args.paths, "kv_cluster")
             or "kv_cluster",
             "kv_node": 1, "kv_replica": 1,
             "run_dir": fresh_dir(run_root.name)}
    # The kv_cluster peers: a storage node for front, a replica for qfront.
    kv_procs = []
    for label, mode, key in (("kv_cluster front", "node", "kv_node"),
                             ("kv_cluster qfront", "replica", "kv_replica")):
        if label in programs:
            peer, subst[key] = start_kv_peer(programs[label], mode, env)
            kv_procs.append(peer)
    print(f"peers: tcp echo 127.0.0.1:{subst['tcp_echo']}, udp echo "
          f"127.0.0.1:{subst['udp_echo']}, kv node 127.0.0.1:"
          f"{subst['kv_node']}, kv replica 127.0.0.1:{subst['kv_replica']}",
          flush=True)

    jobs = []
    for s in specs:
        if s.label not in programs:
            continue
        opts, res = options_of(programs[s.label], s.mode, env)
        if not opts:
            failed_setup.append(f"{s.label}: no options found in --long-help "
                                f"(exit {res.returncode})")
            continue
        jobs += plan(s, programs[s.label], opts, rng, args, subst)

    # Interleave the programs so that several different ones run at once.
    rng.shuffle(jobs)
    print(f"{len(jobs)} runs of {len(programs)} programs, {args.jobs} at a "
          f"time", flush=True)

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sw-edge-") as cwd, \
            concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run, j, cwd, env, args.bound, args.grace,
                               args.handler_wait)
                   for j in jobs]
        for f in concurrent.futures.as_completed(futures):
            j = f.result()
            if j.failure:
                print(f"FAIL {j.program.label} [{j.label}]: {j.failure}\n"
                      f"     repro: {j.repro()}", flush=True)
    elapsed = time.monotonic() - t0
    tcp.shutdown()
    if tls:
        tls.shutdown()
    tls_dir.cleanup()
    run_root.cleanup()
    udp.close()
    for peer in kv_procs:
        peer.send_signal(signal.SIGINT)
        try:
            peer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            peer.kill()
            peer.wait()

    print(f"\n{'program':<22} {'runs':>5} {'failed':>6} {'slowest s':>9}")
    for s in specs:
        mine = [j for j in jobs if j.program is s]
        if not mine:
            continue
        bad = sum(1 for j in mine if j.failure)
        slow = max(j.seconds for j in mine)
        print(f"{s.label:<22} {len(mine):>5} {bad:>6} {slow:>9.1f}")
    for line in failed_setup:
        print(f"FAIL setup: {line}")
    failed = sum(1 for j in jobs if j.failure) + len(failed_setup)
    passed = len(jobs) - (failed - len(failed_setup))
    print(f"wall time {elapsed:.0f} s, seed {seed}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
