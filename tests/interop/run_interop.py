#!/usr/bin/env python3
"""Interop test: shardwire's seed demos against Python asyncio's.

Runs, each bounded in time:
  1. shardwire tcp_echo_client  -> Python tcp_echo_server.py
  2. Python tcp_echo_client.py  -> shardwire tcp_echo_server
  3. shardwire socketpair_echo (prints "Received: abc")
  4. shardwire tcp_echo_server --persistent with a Python client streaming
     1 MiB and checking every byte
  5. shardwire tcp_echo_client with no server: exits 1, no protocol output
  6. shardwire tcp_echo_client against a server that accepts and never
     answers: --timeout-ms bounds the whole exchange, exit 1 with an error
     naming the option
  7. half-closing clients (send, then SHUT_WR, as `nc -N` does) get their
     whole echo from tcp_echo_server, plain and --persistent, then EOF
  2 and 4 again with tcp_echo_server --buffered (a buffered protocol)
and checks the exact printed lines of both sides (asyncio-semantics.md 6.1,
6.2, 6.5). Servers are stopped with SIGINT and must exit 0 promptly.

Usage: run_interop.py --server BIN --client BIN --socketpair BIN
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY_SERVER = os.path.join(HERE, 'tcp_echo_server.py')
PY_CLIENT = os.path.join(HERE, 'tcp_echo_client.py')

sys.path.insert(0, os.path.join(HERE, '..', 'support'))
from harness import LineQueue, check, failures, free_port  # noqa: E402

STEP_TIMEOUT = 20.0      # any single program run
STOP_TIMEOUT = 5.0       # SIGINT -> exit ("promptly")

class Server:
    """A server process whose stdout/stderr lines are collected by threads."""

    def __init__(self, argv):
        print('  $ ' + ' '.join(argv))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._out = LineQueue(self.proc.stdout)
        self._err = LineQueue(self.proc.stderr)
        self.stdout = self._out.lines
        self.stderr = self._err.lines

    def wait_ready(self, marker='Serving on', timeout=STEP_TIMEOUT):
        """Waits for a stderr line containing `marker` (the bind is done)."""
        return self._err.wait_line(re.escape(marker), timeout) is not None

    def stop(self):
        """SIGINT; returns (exit code or None on timeout, seconds taken)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._out.join(STEP_TIMEOUT)
        self._err.join(STEP_TIMEOUT)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(argv, timeout=STEP_TIMEOUT):
    print('  $ ' + ' '.join(argv))
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(argv, None, e.stdout or '',
                                           e.stderr or '')


def show(name, lines):
    for line in lines:
        print(f'    {name}| {line}')


CLIENT_LINES = [
    "Data sent: 'Hello World!'",
    "Data received: 'Hello World!'",
    "The server closed the connection",
]

SERVER_LINE_PATTERNS = [
    r"Connection from \('127\.0\.0\.1', (\d+)\)",
    r"Data received: 'Hello World!'",
    r"Send: 'Hello World!'",
    r"Close the client socket",
]


def check_server_lines(lines, who):
    ok = check(len(lines) == len(SERVER_LINE_PATTERNS),
               f'{who} printed {len(SERVER_LINE_PATTERNS)} lines')
    ok = ok and all(re.fullmatch(p, l)
                    for p, l in zip(SERVER_LINE_PATTERNS, lines))
    check(ok, f'{who} printed the documentation\'s lines')
    if lines:
        m = re.fullmatch(SERVER_LINE_PATTERNS[0], lines[0])
        if m:
            check(0 < int(m.group(1)) < 65536,
                  f'{who}: peer port {m.group(1)} is a port number')


def case_shardwire_client_python_server(args):
    print('[1] shardwire tcp_echo_client -> Python tcp_echo_server.py')
    port = free_port()
    srv = Server([sys.executable, PY_SERVER, '--host=127.0.0.1',
                  f'--port={port}'])
    try:
        if not check(srv.wait_ready(), 'Python server is listening'):
            return
        res = run([args.client, '--host=127.0.0.1', f'--port={port}'])
        show('client', res.stdout.splitlines())
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 0, 'shardwire client exit code 0')
        check(res.stdout.splitlines() == CLIENT_LINES,
              'shardwire client printed the documentation\'s lines')
    finally:
        rc, took = srv.stop()
    show('server', srv.stdout)
    check(rc == 0, f'Python server exited 0 on SIGINT (rc={rc})')
    check_server_lines(srv.stdout, 'Python server')


def case_python_client_shardwire_server(args, extra=()):
    print('[2] Python tcp_echo_client.py -> shardwire tcp_echo_server',
          *extra)
    port = free_port()
    srv = Server([args.server, '--host=127.0.0.1', f'--port={port}',
                  '--shards=2', *extra])
    try:
        if not check(srv.wait_ready(), 'shardwire server is listening'):
            return
        res = run([sys.executable, PY_CLIENT, '--host=127.0.0.1',
                   f'--port={port}'])
        show('client', res.stdout.splitlines())
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 0, 'Python client exit code 0')
        check(res.stdout.splitlines() == CLIENT_LINES,
              'Python client printed the documentation\'s lines')
    finally:
        rc, took = srv.stop()
    show('server', srv.stdout)
    show('server-err', srv.stderr)
    check(rc == 0, f'shardwire server exited 0 on SIGINT (rc={rc})')
    check(took < STOP_TIMEOUT, f'shardwire server stopped in {took:.2f} s')
    check_server_lines(srv.stdout, 'shardwire server')


def case_socketpair(args):
    print('[3] shardwire socketpair_echo')
    res = run([args.socketpair])
    show('out', res.stdout.splitlines())
    show('err', res.stderr.splitlines())
    check(res.returncode == 0, 'socketpair_echo exit code 0')
    check(res.stdout == 'Received: abc\n', 'printed exactly "Received: abc"')


def stream_through(port, total):
    """Streams `total` bytes of a pattern through an echo server; returns
    (bytes sent, bytes received, first differing offset or None)."""
    pattern = bytes((i * 7 + (i >> 10)) & 0xFF for i in range(total))
    sock = socket.create_connection(('127.0.0.1', port), timeout=STEP_TIMEOUT)
    sent = [0]

    def sender():
        view = memoryview(pattern)
        while sent[0] < total:
            n = sock.send(view[sent[0]:sent[0] + 65536])
            sent[0] += n

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = bytearray()
    try:
        while len(got) < total:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    t.join(timeout=STEP_TIMEOUT)
    sock.close()
    bad = None
    for i in range(min(len(got), total)):
        if got[i] != pattern[i]:
            bad = i
            break
    return sent[0], len(got), bad


def case_persistent_stream(args, extra=()):
    print('[4] shardwire tcp_echo_server --persistent, 1 MiB from Python',
          *extra)
    port = free_port()
    srv = Server([args.server, '--host=127.0.0.1', f'--port={port}',
                  '--persistent', '--shards=2', *extra])
    idle = None
    try:
        if not check(srv.wait_ready(), 'shardwire server is listening'):
            return
        total = 1 << 20
        sent, received, bad = stream_through(port, total)
        check(sent == total, f'sent {sent} of {total} bytes')
        check(received == total, f'received {received} of {total} bytes')
        check(bad is None, f'every byte intact (first difference: {bad})')
        # A connection still open at SIGINT: shutdown closes it (the peer
        # sees the end of the stream) and still exits 0 promptly.
        idle = socket.create_connection(('127.0.0.1', port),
                                        timeout=STEP_TIMEOUT)
        idle.sendall(b'ping')
        echoed = b''
        while len(echoed) < 4:
            chunk = idle.recv(4 - len(echoed))
            if not chunk:
                break
            echoed += chunk
        check(echoed == b'ping', 'a second connection is echoed')
    finally:
        rc, took = srv.stop()
    if idle is not None:
        try:
            end = idle.recv(1)
        except (ConnectionResetError, socket.timeout) as e:
            end = e
        idle.close()
        check(end == b'',
              f'the open connection was closed at shutdown ({end!r})')
    check(rc == 0, f'shardwire server exited 0 on SIGINT (rc={rc})')
    check(took < STOP_TIMEOUT, f'shardwire server stopped in {took:.2f} s')
    check(len(srv.stdout) == 2
          and all(re.fullmatch(SERVER_LINE_PATTERNS[0], l) is not None
                  for l in srv.stdout),
          'persistent server printed only Connection from lines')


def case_refused(args):
    print('[5] shardwire tcp_echo_client with no server')
    port = free_port()
    res = run([args.client, '--host=127.0.0.1', f'--port={port}'])
    show('out', res.stdout.splitlines())
    show('err', res.stderr.splitlines())
    check(res.returncode == 1, 'exit code 1')
    check(res.stdout == '', 'no protocol callback printed anything')
    check('refused' in res.stderr, 'the error says the connection was refused')


def case_client_timeout(args):
    print('[6] shardwire tcp_echo_client against a server that never answers')
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(('127.0.0.1', 0))
    silent.listen(1)  # the kernel accepts; nobody reads or answers
    port = silent.getsockname()[1]
    try:
        t0 = time.monotonic()
        res = run([args.client, '--host=127.0.0.1', f'--port={port}',
                   '--timeout-ms=500'], timeout=STEP_TIMEOUT)
        took = time.monotonic() - t0
    finally:
        silent.close()
    show('out', res.stdout.splitlines())
    show('err', res.stderr.splitlines())
    check(res.returncode == 1,
          f'exit code 1 after the timeout (rc={res.returncode})')
    check(took < 5.0, f'gave up after {took:.2f} s (--timeout-ms=500)')
    check(res.stderr.startswith('error:') and '--timeout-ms' in res.stderr,
          'the error names --timeout-ms')
    check('closed the connection' not in res.stdout,
          'no "server closed" line after the timeout')


def half_close_echo(port, payload):
    """Sends `payload` from a thread, then SHUT_WR; reads until EOF.
    Returns (bytes read, 'eof' or the exception that ended the read)."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=STEP_TIMEOUT)

    def sender():
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = bytearray()
    end = 'eof'
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        end = e
    t.join(timeout=STEP_TIMEOUT)
    sock.close()
    return bytes(got), end


def case_half_close(args):
    print('[7] half-closing clients against shardwire tcp_echo_server')
    for extra, payload in [([], b'Hello half-close'),
                           (['--persistent'],
                            bytes((i * 13) & 0xFF for i in range(300000)))]:
        port = free_port()
        srv = Server([args.server, '--host=127.0.0.1', f'--port={port}',
                      '--quiet', '--shards=2'] + extra)
        try:
            if not check(srv.wait_ready(), 'shardwire server is listening'):
                continue
            got, end = half_close_echo(port, payload)
            check(got == payload,
                  f'{extra}: the whole echo of {len(payload)} bytes after '
                  f'SHUT_WR (got {len(got)})')
            check(end == 'eof', f'{extra}: then EOF ({end!r})')
        finally:
            rc, _ = srv.stop()
        check(rc == 0, f'{extra}: server exited 0 on SIGINT (rc={rc})')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--server', required=True)
    parser.add_argument('--client', required=True)
    parser.add_argument('--socketpair', required=True)
    args = parser.parse_args()
    for case in (case_shardwire_client_python_server,
                 case_python_client_shardwire_server, case_socketpair,
                 case_persistent_stream, case_refused, case_client_timeout,
                 case_half_close):
        case(args)
    # The same server with a buffered protocol: same lines, same bytes.
    case_python_client_shardwire_server(args, ['--buffered'])
    case_persistent_stream(args, ['--buffered'])
    if failures:
        print(f'{len(failures)} check(s) failed:')
        for f in failures:
            print(f'  - {f}')
        return 1
    print('all interop checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
