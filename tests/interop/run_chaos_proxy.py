#!/usr/bin/env python3
"""Out-of-process test of chaos_proxy in front of tcp_echo_server.

Starts `tcp_echo_server --persistent --port=0` and `chaos_proxy` (listen and
control on port 0, commands also on stdin), then checks with plain Python
sockets:
  1. slicing from the command line: 4000 bytes come back intact, in order,
     in many small reads;
  2. the control channel: get/set/faults/status answers, ERR for bad input;
     a client that half-closes after its commands gets every answer;
  3. latency set at run time applies to the live connection (lower bound);
  4. cut-after: exactly N bytes, then EOF;
  5. reset-after-ms: the client gets ConnectionResetError;
  6. stdin commands answer on stdout;
  7. `quit` stops the proxy with exit code 0; the echo server stops on SIGINT;
  8. bad options are refused before anything is bound or printed: the error
     names the flag and its value (--listen, --upstream, --control, a fault
     key), and a control port in use fails without a "listening on" line.
Timing checks are lower bounds only. Every wait has a deadline.

Usage: run_chaos_proxy.py --proxy BIN --server BIN
"""
import argparse
import os
import signal
import socket
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
import harness  # noqa: E402
from harness import check, failures, run_bounded  # noqa: E402

STEP_TIMEOUT = 10.0


class Proc(harness.Proc):
    """harness.Proc, with stdin inherited unless given."""

    def __init__(self, argv, stdin=None):
        super().__init__(argv, stdin=stdin)

    @staticmethod
    def wait_line(lines, pattern, timeout=STEP_TIMEOUT):
        """Returns the first match of `pattern` in a coming line, or None."""
        return lines.wait_line(pattern, timeout)


class LineClient:
    """A control-channel client: one command, reply lines up to OK/ERR."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port),
                                             timeout=STEP_TIMEOUT)
        self.buf = b''

    def ask(self, line):
        self.sock.sendall(line.encode() + b'\n')
        lines = []
        while True:
            while b'\n' not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return lines + ['<closed>']
                self.buf += chunk
            raw, self.buf = self.buf.split(b'\n', 1)
            text = raw.decode()
            lines.append(text)
            if text == 'OK' or text.startswith('ERR'):
                return lines


def recv_exact(sock, n):
    """Reads n bytes; returns (bytes, number of recv calls)."""
    data, reads = b'', 0
    while len(data) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        reads += 1
    return data, reads


def recv_to_end(sock):
    """Reads until EOF or an error; returns (bytes, 'eof' | exception)."""
    data = b''
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, 'eof'
            data += chunk
    except OSError as e:
        return data, e


def api_with_config(proxy_bin, echo_port):
    """--config creates proxies at start; the API (port 0) shows them, and a
    toxic added through it acts on the traffic."""
    with tempfile.NamedTemporaryFile('w', suffix='.json',
                                     delete=False) as f:
        json.dump([{'name': 'cfg', 'listen': '127.0.0.1:0',
                    'upstream': f'127.0.0.1:{echo_port}'}], f)
        path = f.name
    proc = Proc([proxy_bin, '--api=127.0.0.1:0', f'--config={path}',
                 '--shards=1'])
    try:
        m = Proc.wait_line(proc.out, r'^api on 127\.0\.0\.1:(\d+)$')
        if not check(m is not None, 'api prints its bound port'):
            return
        base = f'http://127.0.0.1:{m.group(1)}'

        def call(method, path, body=None):
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(base + path, data=data,
                                         method=method)
            with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None

        status, proxies = call('GET', '/proxies')
        check(status == 200 and 'cfg' in proxies,
              f'--config created the proxy ({proxies})')
        port = int(proxies['cfg']['listen'].rsplit(':', 1)[1])
        status, toxic = call('POST', '/proxies/cfg/toxics',
                             {'type': 'limit_data',
                              'attributes': {'bytes': 4}})
        check(status == 200 and toxic['name'] == 'limit_data_downstream',
              f'toxic added ({status} {toxic})')
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=STEP_TIMEOUT) as s:
            s.sendall(b'0123456789')
            data, end = recv_to_end(s)
        check(data == b'0123' and end == 'eof',
              f'limit_data: 4 bytes then EOF (got {data!r}, {end})')
    finally:
        rc = proc.stop()
        check(rc == 0, f'chaos_proxy with --config exited 0 (rc={rc})')
        os.unlink(path)


def refused_options(proxy_bin, echo_port):
    """Each bad command line: exit 1, nothing on stdout, the flag named."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    busy_port = busy.getsockname()[1]
    up = f'--upstream=127.0.0.1:{echo_port}'
    cases = [
        # Without the API the command-line proxy is required.
        (['--api=off'], ['error: --upstream:']),
        (['--api=garbage'], ['error: --api:', "'garbage'"]),
        (['--api=127.0.0.1:0', '--config=/nonexistent/proxies.json'],
         ['error: --config:']),
        (['--api=127.0.0.1:0', '--control=127.0.0.1:0'],
         ['error: --control:']),
        (['--upstream=nowhere'], ['error: --upstream:', "'nowhere'"]),
        ([up, '--listen=127.0.0.1'], ['error: --listen:', "'127.0.0.1'"]),
        ([up, '--listen=127.0.0.1:70000'], ['error: --listen:', '70000']),
        ([up, '--control=garbage'], ['error: --control:', "'garbage'"]),
        ([up, '--down.slice-min=9', '--down.slice-max=2'],
         ['error: --down.slice-min:']),
        ([up, '--connect-timeout-ms=0'], ['error: --connect-timeout-ms:']),
        ([up, f'--control=127.0.0.1:{busy_port}'],
         [f'127.0.0.1:{busy_port}', 'Address already in use']),
        ([f'--api=127.0.0.1:{busy_port}'],
         ['error: --api:', f'127.0.0.1:{busy_port}',
          'Address already in use']),
    ]
    try:
        for extra, expect in cases:
            # The default API port would collide between parallel tests.
            if not any(a.startswith('--api=') for a in extra):
                extra = ['--api=off'] + extra
            r = run_bounded([proxy_bin, '--shards=1'] + extra, STEP_TIMEOUT,
                            f'{extra}')
            if r is None:
                continue
            check(r.returncode == 1 and r.stdout == '' and
                  all(e in r.stderr for e in expect),
                  f'{extra}: exit 1, nothing on stdout, {expect} on stderr '
                  f'(got {r.returncode}, stdout {r.stdout!r}, '
                  f'stderr {r.stderr.strip()!r})')
    finally:
        busy.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--proxy', required=True)
    ap.add_argument('--server', required=True)
    args = ap.parse_args()

    print('chaos_proxy in front of tcp_echo_server')
    echo = Proc([args.server, '--persistent', '--quiet', '--port=0',
                 '--shards=2'])
    m = Proc.wait_line(echo.err, r"Serving on \('127\.0\.0\.1', (\d+)\)")
    if not check(m is not None, 'echo server started'):
        echo.stop()
        return 1
    echo_port = int(m.group(1))

    proxy = Proc([args.proxy, '--listen=127.0.0.1:0', '--api=off',
                  f'--upstream=127.0.0.1:{echo_port}',
                  '--control=127.0.0.1:0', '--stdin', '--shards=2',
                  '--down.slice-min=1', '--down.slice-max=8',
                  '--down.slice-delay-us=200'], stdin=subprocess.PIPE)
    try:
        m = Proc.wait_line(proxy.out, r'^listening on 127\.0\.0\.1:(\d+)$')
        check(m is not None, 'proxy prints its bound port')
        port = int(m.group(1)) if m else 0
        m = Proc.wait_line(proxy.out, r'^control on 127\.0\.0\.1:(\d+)$')
        check(m is not None, 'proxy prints its control port')
        cport = int(m.group(1)) if m else 0
        if not port or not cport:
            return 1

        # 1. Slicing from the command line.
        payload = bytes((i * 7) % 251 for i in range(4000))
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=STEP_TIMEOUT) as c:
            c.sendall(payload)
            got, reads = recv_exact(c, len(payload))
            check(got == payload, 'sliced echo is intact and in order')
            check(reads >= 20, f'sliced echo came in many reads ({reads})')

            # 2. The control channel.
            ctl = LineClient(cport)
            check(ctl.ask('get down.slice-max') == ['8', 'OK'],
                  'get answers the command-line value')
            check(ctl.ask('set down.slice-max 0') == ['OK'], 'set answers OK')
            check(ctl.ask('faults') == ['up: clean',
                                        'down: slice-min=1 slice-delay-us=200',
                                        'OK'],
                  'faults lists what is in force')
            check(ctl.ask('set up.bogus 1')[-1].startswith('ERR'),
                  'unknown fault is an ERR')
            check(ctl.ask('set down.latency-ms x')[-1].startswith('ERR'),
                  'malformed value is an ERR')
            check(ctl.ask('frobnicate')[-1].startswith('ERR'),
                  'unknown command is an ERR')
            status = ctl.ask('status')
            check(status[-1] == 'OK' and 'connections=1 live=1' in status[0],
                  f'status counts the live connection ({status[0]})')
            # A control client that half-closes after its commands (as
            # `nc -N` does) still gets every answer, then EOF.
            with socket.create_connection(('127.0.0.1', cport),
                                          timeout=STEP_TIMEOUT) as hc:
                hc.sendall(b'get down.slice-min\nfrobnicate\n')
                hc.shutdown(socket.SHUT_WR)
                got, end = recv_to_end(hc)
                lines = got.decode().splitlines()
                check(len(lines) == 3 and lines[:2] == ['1', 'OK'] and
                      lines[2].startswith('ERR') and end == 'eof',
                      f'half-closed control client answered ({lines}, {end})')

            # 3. Latency set at run time applies to the live connection.
            check(ctl.ask('set both.latency-ms 100') == ['OK'],
                  'set both.latency-ms')
            t0 = time.monotonic()
            c.sendall(b'ping')
            got, _ = recv_exact(c, 4)
            took = time.monotonic() - t0
            check(got == b'ping' and took >= 0.2,
                  f'round trip took >= 200 ms ({took * 1000:.0f} ms)')

        # 4. cut-after: exactly N bytes, then EOF.
        check(ctl.ask('reset-all') == ['OK'], 'reset-all')
        check(ctl.ask('set down.cut-after 10') == ['OK'], 'set cut-after')
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=STEP_TIMEOUT) as c:
            c.sendall(b'x' * 100)
            got, end = recv_to_end(c)
            check(got == b'x' * 10 and end == 'eof',
                  f'cut after 10 bytes, then EOF ({len(got)} bytes, {end})')

        # 5. reset-after-ms on an idle connection.
        check(ctl.ask('clear') == ['OK'], 'clear')
        check(ctl.ask('set up.reset-after-ms 50') == ['OK'],
              'set reset-after-ms')
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=STEP_TIMEOUT) as c:
            got, end = recv_to_end(c)
            check(isinstance(end, ConnectionResetError),
                  f'idle connection reset ({end!r})')

        # 6. stdin commands answer on stdout.
        proxy.proc.stdin.write('get up.reset-after-ms\n')
        proxy.proc.stdin.flush()
        m = Proc.wait_line(proxy.out, r'^(\S+)$')
        check(m is not None and m.group(1) == '50',
              'stdin command answered on stdout')
        check(Proc.wait_line(proxy.out, r'^OK$') is not None,
              'stdin reply ends with OK')

        status = ctl.ask('status')
        check('cuts=1' in status[0] and 'resets=1' in status[0],
              f'status counts the cut and the reset ({status[0]})')

        # 7. quit.
        check(ctl.ask('quit') == ['OK'], 'quit answers OK')
        try:
            rc = proxy.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f'proxy exited 0 after quit (rc={rc})')
        # 8. Bad options (the echo server is a valid upstream).
        refused_options(args.proxy, echo_port)
        # 9. The Toxiproxy API with --config.
        api_with_config(args.proxy, echo_port)
    finally:
        proxy.stop()
        rc = echo.stop()
        check(rc == 0, f'echo server exited 0 on SIGINT (rc={rc})')

    if failures:
        print(f'{len(failures)} check(s) failed')
        return 1
    print('all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
