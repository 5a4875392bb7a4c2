#!/usr/bin/env python3
"""Interop test for datagrams: shardwire's UDP demos against the asyncio
documentation's UDP echo examples (asyncio-semantics.md 6.3, 6.4).

Runs, each bounded in time:
  1. shardwire udp_echo_client -> Python udp_echo_server.py
  2. Python udp_echo_client.py -> shardwire udp_echo_server
  3. shardwire udp_echo_client with no server: prints `Error received:`
     (ICMP port unreachable), then gives up after --timeout-ms and exits 1
     (asyncio's example hangs forever here)
and checks the exact printed lines of both sides. Servers are stopped with
SIGINT and must exit 0 promptly.

Usage: run_udp_interop.py --server BIN --client BIN
"""
import argparse
import os
import re
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_interop as ri  # noqa: E402  (shared Server/run/check helpers)

PY_SERVER = os.path.join(HERE, 'udp_echo_server.py')
PY_CLIENT = os.path.join(HERE, 'udp_echo_client.py')

CLIENT_LINES = [
    'Send: Hello World!',
    'Received: Hello World!',
    'Close the socket',
    'Connection closed',
]

SERVER_LINE_PATTERNS = [
    r"Starting UDP server",
    r"Received 'Hello World!' from \('127\.0\.0\.1', (\d+)\)",
    r"Send 'Hello World!' to \('127\.0\.0\.1', (\d+)\)",
]


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def check_server_lines(lines, who):
    ok = ri.check(len(lines) == len(SERVER_LINE_PATTERNS),
                  f'{who} printed {len(SERVER_LINE_PATTERNS)} lines')
    ok = ok and all(re.fullmatch(p, l)
                    for p, l in zip(SERVER_LINE_PATTERNS, lines))
    ri.check(ok, f'{who} printed the documentation\'s lines')
    if ok:
        a = re.fullmatch(SERVER_LINE_PATTERNS[1], lines[1]).group(1)
        b = re.fullmatch(SERVER_LINE_PATTERNS[2], lines[2]).group(1)
        ri.check(a == b and 0 < int(a) < 65536,
                 f'{who}: same peer port {a} in both lines')


def case_shardwire_client_python_server(args):
    print('[1] shardwire udp_echo_client -> Python udp_echo_server.py')
    port = free_udp_port()
    srv = ri.Server([sys.executable, PY_SERVER, '--host=127.0.0.1',
                     f'--port={port}'])
    try:
        if not ri.check(srv.wait_ready(), 'Python server is bound'):
            return
        res = ri.run([args.client, '--host=127.0.0.1', f'--port={port}'])
        ri.show('client', res.stdout.splitlines())
        ri.show('client-err', res.stderr.splitlines())
        ri.check(res.returncode == 0, 'shardwire client exit code 0')
        ri.check(res.stdout.splitlines() == CLIENT_LINES,
                 'shardwire client printed the documentation\'s lines')
    finally:
        rc, _ = srv.stop()
    ri.show('server', srv.stdout)
    ri.check(rc == 0, f'Python server exited 0 on SIGINT (rc={rc})')
    check_server_lines(srv.stdout, 'Python server')


def case_python_client_shardwire_server(args):
    print('[2] Python udp_echo_client.py -> shardwire udp_echo_server')
    port = free_udp_port()
    srv = ri.Server([args.server, '--host=127.0.0.1', f'--port={port}'])
    try:
        if not ri.check(srv.wait_ready(), 'shardwire server is bound'):
            return
        res = ri.run([sys.executable, PY_CLIENT, '--host=127.0.0.1',
                      f'--port={port}'])
        ri.show('client', res.stdout.splitlines())
        ri.show('client-err', res.stderr.splitlines())
        ri.check(res.returncode == 0, 'Python client exit code 0')
        ri.check(res.stdout.splitlines() == CLIENT_LINES,
                 'Python client printed the documentation\'s lines')
    finally:
        rc, took = srv.stop()
    ri.show('server', srv.stdout)
    ri.show('server-err', srv.stderr)
    ri.check(rc == 0, f'shardwire server exited 0 on SIGINT (rc={rc})')
    ri.check(took < ri.STOP_TIMEOUT,
             f'shardwire server stopped in {took:.2f} s')
    check_server_lines(srv.stdout, 'shardwire server')


def case_no_server(args):
    print('[3] shardwire udp_echo_client with no server')
    port = free_udp_port()
    res = ri.run([args.client, '--host=127.0.0.1', f'--port={port}',
                  '--timeout-ms=1000'])
    out = res.stdout.splitlines()
    ri.show('out', out)
    ri.show('err', res.stderr.splitlines())
    ri.check(res.returncode == 1, 'exit code 1 after the timeout')
    ri.check(out[:1] == ['Send: Hello World!'], 'sent the message first')
    ri.check(out[1:2] == ['Error received: [Errno 111] Connection refused'],
             'printed the ICMP error as asyncio does')
    ri.check(out[2:] in ([], ['Connection closed']),
             'nothing else but the shutdown\'s Connection closed')
    ri.check('no reply' in res.stderr, 'the error says nothing answered')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--server', required=True)
    parser.add_argument('--client', required=True)
    args = parser.parse_args()
    for case in (case_shardwire_client_python_server,
                 case_python_client_shardwire_server, case_no_server):
        case(args)
    if ri.failures:
        print(f'{len(ri.failures)} check(s) failed:')
        for f in ri.failures:
            print(f'  - {f}')
        return 1
    print('all UDP interop checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
