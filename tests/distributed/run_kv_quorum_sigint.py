#!/usr/bin/env python3
"""SIGINT in the middle of requests stops the replicated kv store's
processes cleanly (docs/distributed.md, "As processes").

  1. qfront: a `kv_cluster qfront` on one real replica and two silent ones
     (sockets here that read and never answer) gets `SET k v`; once both
     silent replicas have received the qfront's first phase for it, the
     request is in flight (no majority can answer it before its 60 s
     deadline). SIGINT: the qfront prints "Shutting down" and exits 0
     within STOP_TIMEOUT; the client's connection ends without an `OK`;
     the qfront's connections to the silent replicas are closed; nothing
     it started is left.
  2. replica: the same real replica gets stores on one connection,
     straight in its wire protocol (demos/kv_quorum/wire.hpp), one at a
     time as a coordinator sends them: a store line, its acknowledgement,
     the next. After WARMUP acknowledgements, SIGINT while a store is sent
     and not acknowledged: it exits 0 within STOP_TIMEOUT, the
     acknowledgements that came are in request order, and the connection
     ends; nothing is left.
  3. restarted on the same --data file, the replica holds every
     acknowledged store (no torn line to cut: the shutdown was clean); a
     last SIGINT with no traffic exits 0.

Waits are for lines the programs print and bytes they send, against
deadlines; no fixed sleeps. Every process is killed at the end, whatever
happens.

Usage: run_kv_quorum_sigint.py --kv BIN
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import LineQueue, check, failures, marked_processes  # noqa: E402

DEADLINE = 10.0      # any wait for a line, a byte or a connection's end
STOP_TIMEOUT = 5.0   # SIGINT -> exit
GONE_WITHIN = 2.0    # nothing the program started outlives it longer
WARMUP = 20          # stores acknowledged before the replica's SIGINT
MARK = 'SHARDWIRE_KV_SIGINT_TEST'


def marked(token):
    """Live (not zombie) processes whose environment holds MARK=token."""
    return sorted(marked_processes(MARK, token))


class Proc:
    """A kv_cluster process with its stderr lines queued; it and whatever
    it starts carry a marker in their environment."""

    def __init__(self, argv, name):
        self.name = name
        self.token = uuid.uuid4().hex
        env = dict(os.environ)
        env[MARK] = self.token
        if 'ASAN_OPTIONS' in env:
            # As run_kv_cluster.py: CAF 0.17's io module's sporadic leak.
            env['ASAN_OPTIONS'] += ':detect_leaks=0'
        print(f'  $ {" ".join(argv)}', flush=True)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.err = LineQueue(self.proc.stderr)
        self.interrupted = None  # when `interrupt` sent SIGINT

    def wait_line(self, pattern):
        return self.err.wait_line(pattern, DEADLINE)

    def interrupt(self):
        """Sends SIGINT (see `stopped_cleanly`)."""
        self.interrupted = time.monotonic()
        self.proc.send_signal(signal.SIGINT)

    def sigint_exits_cleanly(self, what):
        self.interrupt()
        self.stopped_cleanly(what)

    def stopped_cleanly(self, what):
        """After `interrupt`: checks exit 0 within STOP_TIMEOUT of the
        signal after a "Shutting down" line, and that nothing it started
        is left."""
        t0 = self.interrupted
        try:
            rc = self.proc.wait(timeout=max(0.0, t0 + STOP_TIMEOUT -
                                            time.monotonic()))
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        check(rc == 0, f'{what}: SIGINT -> exit 0 within {STOP_TIMEOUT} s '
              f'(exit {rc}, {took:.2f} s)')
        self.err.join(DEADLINE)
        check('Shutting down' in self.err.lines,
              f'{what}: says "Shutting down"')
        until = time.monotonic() + GONE_WITHIN
        while marked(self.token) and time.monotonic() < until:
            time.sleep(0.05)
        left = marked(self.token)
        check(not left, f'{what}: no process left behind ({left})')

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class SilentReplica:
    """A replica that never answers: it accepts, reads and records; `heard`
    is set once a line came in; `closed` once every connection made to it
    has ended."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heard = threading.Event()
        self.lines = []
        self.open = 0
        self.lock = threading.Lock()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,),
                             daemon=True).start()

    def _read(self, conn):
        buf = b''
        try:
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                buf += chunk
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    with self.lock:
                        self.lines.append(line.decode(errors='replace'))
                    self.heard.set()
        except OSError:
            pass
        with self.lock:
            self.open -= 1

    def wait_closed(self, timeout):
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            with self.lock:
                if self.open == 0:
                    return True
            time.sleep(0.02)
        return False

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


def read_to_end(sock, timeout):
    """Everything `sock` receives until its end (EOF or reset); None if it
    has not ended after `timeout` s."""
    sock.settimeout(timeout)
    until = time.monotonic() + timeout
    data = b''
    try:
        while time.monotonic() < until:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
    except socket.timeout:
        pass
    return None


def qfront_mid_request(args, replica_port, procs):
    """Part 1; the qfront gets SIGINT with a SET in flight."""
    silent = [SilentReplica(), SilentReplica()]
    try:
        replicas = [f'127.0.0.1:{replica_port}'] + \
            [f'127.0.0.1:{s.port}' for s in silent]
        front = Proc([args.kv, 'qfront', '--host=127.0.0.1', '--port=0',
                      '--replicas', ','.join(replicas), '--writer-id=1',
                      '--timeout-ms=60000'], 'qfront')
        procs.append(front)
        m = front.wait_line(r'^Serving on 127\.0\.0\.1:(\d+) ')
        if not check(m is not None, 'qfront serving'):
            return
        client = socket.create_connection(('127.0.0.1', int(m.group(1))),
                                          timeout=DEADLINE)
        client.sendall(b'SET k v\n')
        heard = all(s.heard.wait(DEADLINE) for s in silent)
        if not check(heard, 'both silent replicas received the SET\'s first '
                     f'phase (in flight: {[s.lines[:1] for s in silent]})'):
            return
        front.sigint_exits_cleanly('qfront with a SET in flight')
        got = read_to_end(client, DEADLINE)
        client.close()
        check(got is not None and b'OK' not in got,
              f'qfront: the client\'s connection ends, without OK '
              f'(got {got!r})')
        check(all(s.wait_closed(DEADLINE) for s in silent),
              'qfront: its connections to the replicas are closed')
    finally:
        for s in silent:
            s.close()


class StoreLoop:
    """Stores key1, key2, ... on one connection to a replica, one at a
    time: a store line, then its acknowledgement, then the next. `sent`
    (the last rid sent) and `acks` (the acknowledgement lines) change under
    `lock`, a line is sent under it too: whoever holds it and sees
    sent > len(acks) holds a moment when a store is in flight."""

    def __init__(self, port):
        self.conn = socket.create_connection(('127.0.0.1', port),
                                             timeout=DEADLINE)
        self.lock = threading.Lock()
        self.sent = 0
        self.acks = []
        self.warm = threading.Event()   # WARMUP acknowledgements came
        self.ended = threading.Event()  # the connection ended
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        buf = b''
        try:
            while True:
                with self.lock:
                    rid = self.sent + 1
                    self.conn.sendall(
                        f'S {rid} key{rid} 1 1 value-{rid}\n'.encode())
                    self.sent = rid
                while b'\n' not in buf:
                    chunk = self.conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                line, buf = buf.split(b'\n', 1)
                with self.lock:
                    self.acks.append(line.decode(errors='replace'))
                if len(self.acks) >= WARMUP:
                    self.warm.set()
        except OSError:
            pass  # reset, or a send after the replica closed
        finally:
            self.ended.set()


def replica_mid_request(replica, port):
    """Part 2: the replica gets SIGINT with a store in flight. Returns the
    acknowledged rids."""
    loop = StoreLoop(port)
    try:
        if not check(loop.warm.wait(DEADLINE),
                     f'replica: {WARMUP} stores acknowledged'):
            return []
        in_flight = False
        until = time.monotonic() + DEADLINE
        while not in_flight and time.monotonic() < until:
            with loop.lock:
                if loop.sent > len(loop.acks):
                    replica.interrupt()
                    in_flight = True
                    rid = loop.sent
        if not check(in_flight, 'replica: SIGINT with a store in flight'):
            return []
        print(f'  replica: SIGINT with store {rid} in flight', flush=True)
        replica.stopped_cleanly('replica with a store in flight')
        check(loop.ended.wait(DEADLINE), 'replica: the connection ends')
    finally:
        loop.conn.close()
    with loop.lock:
        acks = list(loop.acks)
    want = [f'A {i}' for i in range(1, len(acks) + 1)]
    check(acks == want, 'replica: acknowledgements in request order '
          f'({len(acks)}; first wrong: '
          f'{next((a for a, w in zip(acks, want) if a != w), None)!r})')
    return list(range(1, len(acks) + 1))


def send_all(conn, data):
    try:
        conn.sendall(data)
    except OSError:
        pass  # the replica closed the connection


def restarted_holds(args, data, acks, procs):
    """Part 3: the replica restarted on its file holds every acknowledged
    store; then a SIGINT with no traffic."""
    replica = Proc([args.kv, 'replica', '--host=127.0.0.1', '--port=0',
                    f'--data={data}'], 'replica (restarted)')
    procs.append(replica)
    m = replica.wait_line(r'^Serving kv replica on 127\.0\.0\.1:(\d+), .*$')
    if not check(m is not None, 'replica restarted'):
        return
    check('torn' not in m.group(0),
          f'replica: no torn line to cut ({m.group(0)!r})')
    conn = socket.create_connection(('127.0.0.1', int(m.group(1))),
                                    timeout=DEADLINE)
    queries = b''.join(f'Q {rid} key{rid}\n'.encode() for rid in acks)
    threading.Thread(target=lambda: send_all(conn, queries),
                     daemon=True).start()
    want = {rid: f'R {rid} 1 1 =value-{rid}' for rid in acks}
    got, buf = {}, b''
    until = time.monotonic() + DEADLINE
    try:
        while len(got) < len(acks) and time.monotonic() < until:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            *whole, buf = buf.split(b'\n')
            for line in whole:
                text = line.decode(errors='replace')
                got[int(text.split()[1])] = text
    except (OSError, ValueError, IndexError):
        pass
    conn.close()
    wrong = [(rid, got.get(rid)) for rid in acks if got.get(rid) != want[rid]]
    check(not wrong, f'replica: all {len(acks)} acknowledged stores read '
          f'back after the restart (wrong: {wrong[:3]})')
    replica.sigint_exits_cleanly('replica with no traffic')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kv', required=True)
    args = ap.parse_args()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix='kv_sigint_')
    data = os.path.join(work, 'replica.log')
    procs = []
    try:
        replica = Proc([args.kv, 'replica', '--host=127.0.0.1', '--port=0',
                        f'--data={data}'], 'replica')
        procs.append(replica)
        m = replica.wait_line(r'^Serving kv replica on 127\.0\.0\.1:(\d+),')
        if check(m is not None, 'replica serving'):
            port = int(m.group(1))
            qfront_mid_request(args, port, procs)
            acks = replica_mid_request(replica, port)
            if acks:
                restarted_holds(args, data, acks, procs)
    except (OSError, RuntimeError) as e:
        check(False, f'error: {e!r}')
    finally:
        for p in procs:
            p.kill()
        if failures:
            for p in procs:
                print(f'--- stderr of {p.name} ---')
                for line in p.err.lines[-20:]:
                    print('    ' + line)
        shutil.rmtree(work, ignore_errors=True)
    print(f'{len(failures)} failure(s) in {time.monotonic() - started:.1f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
