"""What the two history tests share (run_kv_history.py: the sharded
kv_cluster under chaos_proxy faults; run_kv_quorum_processes.py: the
replicated one with replicas killed): a chaos_proxy and its control channel,
a kv_history_client run and its history's statuses, lincheck's verdict, and
the cleanup.

A script imports it after putting its own folder and ../support on its path
(both scripts do), e.g.

    from kv_history_runner import run_history_client, stop_all
"""
import json
import socket
import subprocess
import time

from harness import Proc as IoProc
from harness import check, failures, run_bounded
from run_kv_cluster import Proc

# Any wait for a process to start or for the history client to end.
DEADLINE = 10.0


class Control:
    """chaos_proxy's line-based control channel."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.buf = b''

    def cmd(self, line):
        self.sock.sendall(line.encode() + b'\n')
        reply = []
        while True:
            while b'\n' not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError('control channel closed')
                self.buf += chunk
            one, self.buf = self.buf.split(b'\n', 1)
            one = one.decode()
            reply.append(one)
            if one == 'OK' or one.startswith('ERR'):
                return reply

    def close(self):
        self.sock.close()


def start_proxy(args, upstream_port, procs, name):
    """A chaos_proxy to 127.0.0.1:upstream_port; (listen port, control)."""
    p = IoProc([args.proxy, '--listen=127.0.0.1:0', '--api=off',
                f'--upstream=127.0.0.1:{upstream_port}',
                '--control=127.0.0.1:0', '--shards=1', '--seed=7'])
    p.name = name
    procs.append(p)
    m = p.out.wait_line(r'^listening on 127\.0\.0\.1:(\d+)$', DEADLINE)
    c = p.out.wait_line(r'^control on 127\.0\.0\.1:(\d+)$', DEADLINE)
    if not check(m is not None and c is not None, f'{name} listening'):
        raise RuntimeError(f'{name} did not start')
    return int(m.group(1)), Control(int(c.group(1)))


def start_history_client(args, port, history, procs, clients, keys, seconds,
                         reply_timeout_ms):
    """Starts kv_history_client: `clients` connections to 127.0.0.1:port
    run random GET/SET over `keys` keys for `seconds` s and record the
    history in the file `history`. Returns its process (in `procs` too)."""
    client = IoProc([args.client, f'--port={port}', f'--out={history}',
                     f'--clients={clients}', f'--keys={keys}',
                     f'--seconds={seconds}',
                     f'--reply-timeout-ms={reply_timeout_ms}'])
    client.name = 'kv_history_client'
    procs.append(client)
    return client


def finish_history_client(client, history, timeout):
    """Waits up to `timeout` s for the history client to end; checks that it
    exits 0 with its summary line and prints that. Returns the recorded
    operations (a list of dicts), or None after a failed check."""
    try:
        rc = client.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    summary = client.out.wait_line(r'^operations .*$', 1)
    if not check(rc == 0 and summary is not None,
                 f'history client exits 0 (got {rc}, '
                 f'stderr {client.err.tail()})'):
        return None
    print(f'  client: {summary.group(0)}')
    with open(history) as f:
        return [json.loads(line) for line in f if line.strip()]


def count_statuses(ops, note=''):
    """Prints and returns (ok, unknown, fail): how many operations of the
    history ended with each status; `note` ends the printed line."""
    n_ok = sum(o['status'] == 'ok' for o in ops)
    n_unknown = sum(o['status'] == 'unknown' for o in ops)
    n_fail = sum(o['status'] == 'fail' for o in ops)
    print(f'  history: {len(ops)} operations, {n_ok} ok, {n_unknown} '
          f'unknown, {n_fail} fail{note}')
    return n_ok, n_unknown, n_fail


def lincheck(args, path):
    """Runs `lincheck --model=kv` on the history file `path` (bounded) and
    prints its output; the CompletedProcess, or None after a failed check."""
    r = run_bounded([args.lincheck, f'--history={path}', '--model=kv',
                     '--time-limit=10'], 30, 'lincheck')
    if r is not None:
        print('    ' + '\n    '.join(r.stdout.strip().splitlines()[:40]))
        if r.stderr.strip():
            print('    stderr: ' + r.stderr.strip()[:500])
    return r


def check_linearizable(args, path):
    """Checks that lincheck finds the history file `path` linearizable
    (exit 0)."""
    t0 = time.monotonic()
    r = lincheck(args, path)
    took = time.monotonic() - t0
    check(r is not None and r.returncode == 0 and
          'linearizable' in r.stdout,
          f'lincheck: the history is linearizable (exit '
          f'{r.returncode if r else None}, {took:.2f} s)')


def stop_all(procs, controls):
    """Closes the proxies' control connections and kills every process
    (cluster processes and proxies); after a failure, prints the end of
    each cluster process's stderr."""
    for c in controls:
        try:
            c.close()
        except OSError:
            pass
    for p in procs:
        if isinstance(p, Proc):
            p.kill()
        elif p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
    if failures:
        for p in procs:
            if isinstance(p, Proc):
                print(f'--- stderr of {p.name} ---')
                for line in p.lines[-20:]:
                    print('    ' + line)
