#!/usr/bin/env python3
"""A running demo's /metrics, checked by promtool and scraped by a real
Prometheus server (docs/metrics.md).

Starts `tcp_echo_server --metrics=127.0.0.1:0`, sends echo traffic, then
  1. GET /metrics: Prometheus text that `promtool check metrics` accepts,
     with the accepted-connection and byte counters moved by the traffic;
  2. a Prometheus server (Debian's `prometheus`, its own scratch storage
     and a loopback port) scrapes it every second; the test queries the
     series back through Prometheus' HTTP API (/api/v1/query) until the
     accepted-connection count it stored matches what the demo served;
  3. a bad --metrics value is refused, naming the option;

Skipped (exit 77) when prometheus or promtool is not installed. Every wait
has a deadline; both processes are stopped at the end.

  4. chaos_proxy --metrics: Toxiproxy's series (after traffic through a
     proxy made with the API) and shardwire's in one exposition.

Usage: run_prometheus_scrape.py --server BIN --proxy BIN --work-dir DIR
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import Proc, check, failures, free_port, run_bounded  # noqa: E402

SKIP = 77
STEP_TIMEOUT = 10.0
SCRAPE_DEADLINE = 60.0
ACCEPTED = 'shardwire_accepted_connections_total'



def http_get(url, timeout=STEP_TIMEOUT):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def echo_round_trips(port, n):
    for i in range(n):
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=STEP_TIMEOUT) as s:
            payload = f'hello {i}\n'.encode()
            s.sendall(payload)
            got = b''
            while len(got) < len(payload):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            check(got == payload, f'echo {i} came back')


def series_sum(text, name):
    """Sum of every sample of `name` (any labels) in exposition text."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf'^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)', line)
        if m:
            total += float(m.group(2))
    return total


def promtool_accepts(text):
    r = subprocess.run(['promtool', 'check', 'metrics'], input=text,
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
    return r.returncode == 0


def scrape_with_prometheus(metrics_port, want, work_dir):
    """Runs a Prometheus server on the demo; True once it stored `want`."""
    os.makedirs(work_dir, exist_ok=True)
    storage = tempfile.mkdtemp(prefix='prom-', dir=work_dir)
    cfg = os.path.join(storage, 'prometheus.yml')
    with open(cfg, 'w') as f:
        f.write('global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'
                'scrape_configs:\n  - job_name: shardwire\n'
                '    static_configs:\n'
                f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    web = free_port()
    prom = Proc(['prometheus', f'--config.file={cfg}',
                 f'--storage.tsdb.path={os.path.join(storage, "data")}',
                 f'--web.listen-address=127.0.0.1:{web}'])
    try:
        query = urllib.parse.quote(f'sum({ACCEPTED})')
        deadline = time.monotonic() + SCRAPE_DEADLINE
        seen = None
        while time.monotonic() < deadline:
            if prom.proc.poll() is not None:
                print('\n'.join(prom.err.tail(20)))
                check(False, 'prometheus keeps running')
                return False
            try:
                _, body = http_get(
                    f'http://127.0.0.1:{web}/api/v1/query?query={query}', 2.0)
                result = json.loads(body)['data']['result']
                if result:
                    seen = float(result[0]['value'][1])
                    if seen >= want:
                        break
            except (OSError, ValueError, KeyError):
                pass  # not ready yet
            time.sleep(0.5)  # polling an outside server: nothing to await
        check(seen is not None and seen >= want,
              f'prometheus stored {ACCEPTED} = {seen} (want >= {want})')
        _, body = http_get(f'http://127.0.0.1:{web}/api/v1/query?query='
                           + urllib.parse.quote('up{job="shardwire"}'))
        up = json.loads(body)['data']['result']
        check(bool(up) and up[0]['value'][1] == '1',
              'prometheus reports the target up')
        return seen is not None and seen >= want
    finally:
        prom.stop(signal.SIGTERM)
        shutil.rmtree(storage, ignore_errors=True)


def chaos_proxy_metrics(proxy_bin, echo_port):
    """chaos_proxy --metrics: Toxiproxy's series and shardwire's, one
    exposition that promtool accepts."""
    proxy = Proc([proxy_bin, '--api=127.0.0.1:0', '--metrics=127.0.0.1:0',
                  '--shards=1'])
    try:
        mm = proxy.err.wait_line(r'metrics on 127\.0\.0\.1:(\d+)',
                                 STEP_TIMEOUT)
        ma = proxy.out.wait_line(r'api on 127\.0\.0\.1:(\d+)', STEP_TIMEOUT)
        if not check(mm is not None and ma is not None,
                     'chaos_proxy serves its API and metrics'):
            print('\n'.join(proxy.err.tail(20)))
            return
        body = json.dumps({'name': 'echo', 'listen': '127.0.0.1:0',
                           'upstream': f'127.0.0.1:{echo_port}'}).encode()
        req = urllib.request.Request(
            f'http://127.0.0.1:{ma.group(1)}/proxies', data=body,
            method='POST', headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
            created = json.loads(r.read().decode())
        echo_round_trips(int(created['listen'].rsplit(':', 1)[1]), 2)
        status, text = http_get(f'http://127.0.0.1:{mm.group(1)}/metrics')
        check(status == 200, 'chaos_proxy GET /metrics answers 200')
        check(promtool_accepts(text), 'promtool accepts chaos_proxy\'s')
        sent = series_sum(text, 'toxiproxy_proxy_sent_bytes_total')
        check(sent >= 2 * 8, f'Toxiproxy\'s sent bytes counted ({sent})')
        check(re.search(r'^toxiproxy_proxy_received_bytes_total\{'
                        r'direction="upstream",[^}]*proxy="echo"', text, re.M)
              is not None, 'Toxiproxy\'s labels (direction, proxy, ...)')
        check(series_sum(text, ACCEPTED) >= 2,
              'shardwire\'s series in the same exposition')
    finally:
        check(proxy.stop() == 0, 'chaos_proxy stops on SIGINT, exit 0')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--server', required=True)
    ap.add_argument('--proxy', required=True)
    ap.add_argument('--work-dir', required=True)
    args = ap.parse_args()
    for tool in ('prometheus', 'promtool'):
        if shutil.which(tool) is None:
            print(f'SKIPPED: {tool} is not installed (make test-deps '
                  'installs Debian\'s prometheus)')
            return SKIP

    r = run_bounded([args.server, '--metrics=127.0.0.1:99999'], STEP_TIMEOUT)
    check(r is not None and r.returncode == 1
          and '--metrics' in r.stderr,
          'a bad --metrics value is refused, naming the option')

    demo = Proc([args.server, '--persistent', '--quiet', '--port=0',
                 '--shards=2', '--metrics=127.0.0.1:0'])
    try:
        # The metrics line comes first: served right after the runtime
        # started, before the program's own server.
        mm = demo.err.wait_line(r'metrics on 127\.0\.0\.1:(\d+)',
                                STEP_TIMEOUT)
        m = demo.err.wait_line(r"Serving on \('127\.0\.0\.1', (\d+)\)",
                               STEP_TIMEOUT)
        if not check(m is not None and mm is not None,
                     'echo server serves echo and metrics'):
            print('\n'.join(demo.err.tail(20)))
            return 1
        port, metrics_port = int(m.group(1)), int(mm.group(1))
        echo_round_trips(port, 5)
        status, text = http_get(f'http://127.0.0.1:{metrics_port}/metrics')
        check(status == 200, 'GET /metrics answers 200')
        check(promtool_accepts(text), 'promtool check metrics accepts it')
        accepted = series_sum(text, ACCEPTED)
        check(accepted >= 5, f'{ACCEPTED} counted the 5 connections '
                             f'({accepted})')
        check(series_sum(text, 'shardwire_received_bytes_total') >= 5 * 8,
              'bytes received counted')
        check(re.search(rf'^{ACCEPTED}{{shard="1"}}', text, re.M)
              is not None, 'one series per shard, labelled')
        scrape_with_prometheus(metrics_port, accepted,
                               args.work_dir)
        chaos_proxy_metrics(args.proxy, port)
    finally:
        check(demo.stop() == 0, 'echo server stops on SIGINT, exit 0')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
