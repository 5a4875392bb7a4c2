#!/usr/bin/env python3
"""chaos_proxy's Toxiproxy API driven by the npm package toxiproxy-node-client.

Installs the client (a pinned version) into --work-dir with npm the first
time, starts `tcp_echo_server --persistent` and `chaos_proxy --api` with no
proxy of its own (like toxiproxy-server), then runs
toxiproxy_node/client_test.js, which creates proxies, adds each toxic and
observes its effect on echo traffic through them.

Skipped (exit 77, CTest's SKIP_RETURN_CODE) with the reason printed when
Node >= 18 or npm is missing, or when the package cannot be installed (no
route to the npm registry): the client is fetched at test time, never
vendored. Every wait has a deadline; both servers are stopped at the end.

Usage: run_toxiproxy_node.py --proxy BIN --server BIN --work-dir DIR
"""
import argparse
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import Proc, check, failures  # noqa: E402

CLIENT = 'toxiproxy-node-client@4.1.0'
SKIP = 77
STEP_TIMEOUT = 10.0
HERE = os.path.dirname(os.path.abspath(__file__))


def skip(why):
    print(f'SKIPPED: {why}')
    sys.exit(SKIP)


def node_major():
    try:
        out = subprocess.run(['node', '--version'], capture_output=True,
                             text=True, timeout=20).stdout.strip()
        return int(out.lstrip('v').split('.')[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def install_client(work_dir):
    """node_modules under work_dir with the client; False if npm failed."""
    marker = os.path.join(work_dir, 'node_modules', 'toxiproxy-node-client',
                          'package.json')
    if os.path.exists(marker):
        return True
    os.makedirs(work_dir, exist_ok=True)
    argv = ['npm', 'install', '--no-audit', '--no-fund', '--no-save',
            '--prefix', work_dir, CLIENT]
    print('  $ ' + ' '.join(argv), flush=True)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        print('  npm install did not finish in 180 s')
        return False
    if r.returncode != 0:
        print(r.stdout[-2000:] + r.stderr[-2000:])
        return False
    return os.path.exists(marker)



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--proxy', required=True)
    ap.add_argument('--server', required=True)
    ap.add_argument('--work-dir', required=True)
    args = ap.parse_args()

    if shutil.which('node') is None or node_major() < 18:
        skip('Node.js >= 18 is not installed (make test-deps installs it)')
    if shutil.which('npm') is None:
        skip('npm is not installed (make test-deps installs it)')
    if not install_client(args.work_dir):
        skip(f'could not install {CLIENT} with npm (no registry access?)')

    echo = Proc([args.server, '--persistent', '--quiet', '--port=0',
                 '--shards=1'])
    proxy = None
    try:
        m = echo.err.wait_line(r"Serving on \('127\.0\.0\.1', (\d+)\)",
                               STEP_TIMEOUT)
        if not check(m is not None, 'echo server started'):
            return 1
        echo_addr = f'127.0.0.1:{m.group(1)}'
        proxy = Proc([args.proxy, '--api=127.0.0.1:0', '--shards=2'])
        m = proxy.out.wait_line(r'api on ([\d.]+):(\d+)', STEP_TIMEOUT)
        if not check(m is not None, 'chaos_proxy serves the API'):
            print('\n'.join(proxy.err.tail(20)))
            return 1
        env = dict(os.environ,
                   TOXIPROXY_URL=f'http://{m.group(1)}:{m.group(2)}',
                   ECHO_ADDR=echo_addr,
                   NODE_PATH=os.path.join(args.work_dir, 'node_modules'))
        argv = ['node', os.path.join(HERE, 'toxiproxy_node', 'client_test.js')]
        print('  $ ' + ' '.join(argv), flush=True)
        try:
            r = subprocess.run(argv, env=env, timeout=120,
                               stdin=subprocess.DEVNULL)
            check(r.returncode == 0, 'the Node client test passed')
        except subprocess.TimeoutExpired:
            check(False, 'the Node client test ended within 120 s')
        check(proxy.proc.poll() is None, 'chaos_proxy still runs')
    finally:
        if proxy is not None:
            check(proxy.stop() == 0, 'chaos_proxy stops on SIGINT, exit 0')
        echo.stop()
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
