#!/usr/bin/env python3
"""Multi-process test of demos/kv_cluster.cpp (docs/distributed.md).

Starts three storage nodes and a front node as separate processes on free
loopback ports and drives the front with a line-protocol client:
  0. refused before anything is served: a node on a port in use (the error
     names the address and the OS's reason, exit 1), a stray positional
     argument, a front without --nodes;
  1. SET / GET / DEL over keys spread on all three nodes; a client that
     half-closes after its requests (as `nc -N` does) gets every reply,
     then EOF;
  2. kill -9 one node: its keys answer "ERR node unavailable" at once, the
     other nodes' keys keep working;
  3. restart it on the same port: the front looks it up again (back-off) and
     its keys work again (an empty store: the node kept nothing);
  4. SIGSTOP one node (cut off, its socket stays open) while a request waits
     on it: the front's phi-accrual detector (heartbeats every 500 ms)
     suspects the node, the front says so with cause "suspected", and the
     waiting request is answered "ERR node unavailable" long before its own
     request timeout and before CAF's 5 s connection timeout; after SIGCONT
     the node is found again.
  5. SIGINT stops the front and the nodes, each exits 0.
Waits poll the protocol against deadlines; no fixed sleeps.

Usage: run_kv_cluster.py --kv BIN
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import (LineQueue, check, failures, free_ports,  # noqa: E402
                     run_bounded)

DEADLINE = 10.0        # any wait for a state change
STOP_TIMEOUT = 5.0     # SIGINT -> exit
# Front: requests time out after 8 s, so an answer in less proves the
# down message answered it. Heartbeats every 200 ms, a node silent for 1 s
# is cut off (long enough not to fire on a loaded CI machine).
FRONT_TIMEOUT_MS = 8000
# CAF's own connection timeout stays at its 5 s: a cut-off node must be
# found by the front's phi-accrual detector (heartbeats every 100 ms).
NET_OPTS = ['--middleman.heartbeat-interval=200ms']
FRONT_OPTS = ['--heartbeat-ms=100']

def process_stopped(pid):
    """True once /proc says the process is stopped (state T)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] in ('T', 't')
    except OSError:
        return False


def fnv1a(key):
    h = 14695981039346656037
    for b in key.encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


class Proc:
    """A process whose stderr lines are collected by a thread."""

    def __init__(self, argv, name):
        self.name = name
        self.argv = argv
        print(f'  $ {" ".join(argv)}')
        env = os.environ.copy()
        if 'ASAN_OPTIONS' in env:
            # Under the sanitizer job: CAF 0.17's io module sporadically
            # leaks its BASP broker state when a node that has just been
            # reconnected is stopped (about 1 run in 4, only with the
            # restarted node). Leak checks stay on in the in-process
            # serialization_test; here they are off for the children.
            env['ASAN_OPTIONS'] += ':detect_leaks=0'
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.stderr = LineQueue(self.proc.stderr)
        self.lines = self.stderr.lines

    def wait_line(self, marker, timeout=DEADLINE):
        return self.stderr.wait_line(re.escape(marker), timeout) is not None

    def stop(self):
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Client:
    """A blocking line-protocol client; every read has a deadline."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.buf = b''

    def send(self, line):
        self.sock.sendall(line.encode() + b'\n')

    def read(self, timeout=DEADLINE):
        until = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError('no reply')
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('front closed the connection')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode()

    def cmd(self, line, timeout=DEADLINE):
        self.send(line)
        return self.read(timeout)

    def pipeline(self, lines):
        self.sock.sendall(''.join(l + '\n' for l in lines).encode())
        return [self.read() for _ in lines]

    def close(self):
        self.sock.close()


def half_close_exchange(port, payload, timeout=DEADLINE):
    """Sends `payload`, half-closes (SHUT_WR) and reads until the front
    closes. Returns (reply lines, whether EOF came within the deadline)."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=5)
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b''
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return data.decode().split('\n'), False
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                lines = data.decode().split('\n')
                if lines and lines[-1] == '':
                    lines.pop()  # the last reply's newline
                return lines, True
            data += chunk
    finally:
        sock.close()


def refused_at_start(args, port):
    """Option and bind errors: exit 1 with a clear message, nothing served."""
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(('127.0.0.1', 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    try:
        for argv, expect in [
                ([args.kv, 'node', '--port', str(busy)],
                 [f'127.0.0.1:{busy}', 'Address already in use']),
                ([args.kv, 'front', '--port', str(busy), '--nodes',
                  f'127.0.0.1:{port}'],
                 [f'127.0.0.1:{busy}', 'Address already in use']),
                ([args.kv, 'node', str(port)],
                 ['error: unexpected argument', f"'{port}'"]),
                ([args.kv, 'node', '--port', str(port), 'front'],
                 ['error: unexpected argument', "'front'"]),
                ([args.kv, 'front', '--port', str(port)],
                 ['error: --nodes:']),
                ([args.kv, 'front', '--port', str(port), '--nodes',
                  f'127.0.0.1:{busy}', '--timeout-ms=0'],
                 ['error: --timeout-ms:'])]:
            r = run_bounded(argv, DEADLINE, f'{argv[1:]}')
            if r is None:
                continue
            check(r.returncode == 1 and 'Serving' not in r.stderr and
                  all(e in r.stderr for e in expect),
                  f'{" ".join(argv[1:])}: exit 1 and {expect} in stderr '
                  f'(got {r.returncode}, {r.stderr.strip()!r})')
    finally:
        blocker.close()


def poll(what, fn, timeout=DEADLINE):
    """Calls fn() until it is true or the deadline passes."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if fn():
            return True
        time.sleep(0.02)
    return check(False, f'{what} within {timeout} s')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kv', required=True, help='path of kv_cluster')
    args = ap.parse_args()
    started = time.monotonic()

    fport, *nports = free_ports(4)
    n_nodes = len(nports)
    nodes = []

    def start_node(i):
        p = Proc([args.kv, 'node', '--port', str(nports[i])] + NET_OPTS,
                 f'node{i}')
        check(p.wait_line('Serving kv node'), f'node {i} serving')
        return p

    procs = []
    try:
        # -- 0. refused at start ----------------------------------------------
        refused_at_start(args, fport)

        for i in range(n_nodes):
            nodes.append(start_node(i))
        procs.extend(nodes)
        front = Proc([args.kv, 'front', '--port', str(fport), '--nodes',
                      ','.join(f'127.0.0.1:{p}' for p in nports),
                      f'--timeout-ms={FRONT_TIMEOUT_MS}'] + NET_OPTS +
                     FRONT_OPTS,
                     'front')
        procs.append(front)
        if not check(front.wait_line('Serving on'), 'front serving'):
            return 1
        c = Client(fport)

        keys = [f'key{i}' for i in range(60)]
        owner = {k: fnv1a(k) % n_nodes for k in keys}
        check(all(any(o == i for o in owner.values())
                  for i in range(n_nodes)), 'keys cover every node')
        probe = {i: next(k for k in keys if owner[k] == i)
                 for i in range(n_nodes)}

        def node_ok(i):
            return c.cmd(f'GET {probe[i]}') != 'ERR node unavailable'

        # -- 1. the cluster works --------------------------------------------
        poll('all nodes reachable', lambda: all(
            node_ok(i) for i in range(n_nodes)))
        check(c.cmd('PING') == 'PONG', 'PING -> PONG')
        replies = c.pipeline([f'SET {k} value of {k}' for k in keys])
        check(replies == ['OK'] * len(keys), 'SET of 60 keys -> OK (pipelined)')
        replies = c.pipeline([f'GET {k}' for k in keys])
        check(replies == [f'value of {k}' for k in keys],
              'GET returns every value, in request order')
        check(c.cmd('DEL key0') == 'OK', 'DEL of a present key -> OK')
        check(c.cmd('GET key0') == 'NIL', 'GET after DEL -> NIL')
        check(c.cmd('DEL key0') == 'NIL', 'DEL of an absent key -> NIL')
        check(c.cmd('SET key0 value of key0') == 'OK', 'SET again')
        check(c.cmd('GET') == 'ERR bad request', 'GET without key -> ERR')
        check(c.cmd('FROB x') == 'ERR bad request', 'unknown command -> ERR')

        # A half-closing client: every request before its EOF is answered,
        # in order, then the front closes. The last line has no '\n'.
        hc_keys = [f'halfclose{i}' for i in range(6)]
        payload = ''.join(f'SET {k} half {k}\nGET {k}\n' for k in hc_keys)
        payload += 'FROB\nDEL nokey\nPING'
        replies, eof = half_close_exchange(fport, payload.encode())
        expect = []
        for k in hc_keys:
            expect += ['OK', f'half {k}']
        expect += ['ERR bad request', 'NIL', 'PONG']
        check(replies == expect,
              f'half-closed client gets every reply (got {replies!r})')
        check(eof, 'then the front closes the connection')
        replies, eof = half_close_exchange(fport, b'')
        check(replies == [] and eof,
              'a client that half-closes at once is closed at once')

        # -- 2. kill -9 a node ------------------------------------------------
        victim = 1
        nodes[victim].proc.kill()
        nodes[victim].proc.wait()
        poll('the killed node reported unavailable',
             lambda: not node_ok(victim))
        t0 = time.monotonic()
        replies = c.pipeline([f'GET {k}' for k in keys])
        took = time.monotonic() - t0
        expect = ['ERR node unavailable' if owner[k] == victim
                  else f'value of {k}' for k in keys]
        check(replies == expect,
              'its keys -> ERR node unavailable, the others keep working')
        check(took < 1.0, f'answered at once ({took:.3f} s for 60 GETs)')
        other = probe[0]
        check(c.cmd(f'SET {other} changed') == 'OK',
              'SET on a live node while one is down')
        check(c.cmd(f'SET {probe[victim]} x') == 'ERR node unavailable',
              'SET on the dead node -> ERR node unavailable')

        # -- 3. restart it on the same port -----------------------------------
        nodes[victim] = start_node(victim)
        procs.append(nodes[victim])
        poll('the restarted node found again', lambda: node_ok(victim))
        replies = c.pipeline([f'GET {k}' for k in keys])
        expect = ['NIL' if owner[k] == victim else
                  ('changed' if k == other else f'value of {k}')
                  for k in keys]
        check(replies == expect,
              'after the restart: its keys are empty (NIL), others kept')
        check(c.cmd(f'SET {probe[victim]} back') == 'OK' and
              c.cmd(f'GET {probe[victim]}') == 'back',
              'SET/GET on the restarted node')

        # -- 4. cut off (SIGSTOP) while a request waits on it -----------------
        cut = 2
        nodes[cut].proc.send_signal(signal.SIGSTOP)
        # kill() returns before the signal has stopped the process: a request
        # sent at once can still be answered. Wait for state T in /proc.
        poll('the cut-off node is stopped',
             lambda: process_stopped(nodes[cut].proc.pid))
        try:
            t0 = time.monotonic()
            reply = c.cmd(f'GET {probe[cut]}', timeout=DEADLINE)
            took = time.monotonic() - t0
            check(reply == 'ERR node unavailable',
                  f'a request waiting on a cut-off node -> {reply!r}')
            check(took < FRONT_TIMEOUT_MS / 1000 / 2,
                  f'answered by the down message after {took:.2f} s, '
                  f'not by the {FRONT_TIMEOUT_MS} ms timeout')
            poll('the front names the cause: suspected (phi-accrual)',
                 lambda: any(f'node {cut} ' in line and '(suspected)' in line
                             for line in list(front.lines)))
            check(c.cmd(f'GET {probe[0]}') == 'changed',
                  'other nodes unaffected')
        finally:
            nodes[cut].proc.send_signal(signal.SIGCONT)
        poll('the cut-off node found again after SIGCONT',
             lambda: node_ok(cut))
        check(c.cmd(f'GET {probe[cut]}') == f'value of {probe[cut]}',
              'its data survived (the process lived on)')
        c.close()

        # -- 5. clean stop ----------------------------------------------------
        rc = front.stop()
        check(rc == 0, f'front exits 0 on SIGINT (got {rc})')
        for i, n in enumerate(nodes):
            rc = n.stop()
            check(rc == 0, f'node {i} exits 0 on SIGINT (got {rc})')
    except (OSError, TimeoutError) as e:
        check(False, f'client error: {e!r}')
    finally:
        for p in procs:
            p.kill()
        if failures:
            for p in procs:
                print(f'--- stderr of {p.name} ---')
                for line in p.lines[-30:]:
                    print('    ' + line)
    took = time.monotonic() - started
    print(f'{len(failures)} failure(s) in {took:.1f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
