#!/usr/bin/env python3
"""A real kv_cluster's history, recorded under faults and checked for
linearizability (issue 21; docs/distributed.md, "Checking a real
cluster's history").

  clients (kv_history_client) -> chaos_proxy A -> front -> node0
                                                        -> chaos_proxy B -> node1
                                                        -> node2

Three storage nodes and a front run as processes on loopback; proxy A sits
between the clients and the front, proxy B between the front and node 1
(latency only there: the front's links tolerate it). Four clients run random
GET/SET over three keys through proxy A while this script changes A's faults
over its control channel:

  phase     A's faults
  latency   latency 20 ms +- 15 ms both ways, replies sliced into 1-3 bytes
  reset     every connection reset 150 ms after it was made (clients lose
            requests in flight and reconnect)
  hole      replies swallowed (down black hole): requests reach the front,
            the clients time out
  healed    nothing

Then `lincheck --model=kv` checks the recorded history: exit 0
(linearizable), with enough ok operations and some unknown ones (the faults
bit). Last, a copy of the history with one planted stale read (a GET
rewritten to return a value that an acknowledged SET had overwritten before
the GET began) must make lincheck exit 1 and name the key.

Every process is killed at the end, whatever happens.

Usage: run_kv_history.py --kv BIN --proxy BIN --client BIN --lincheck BIN
                         [--keep DIR]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'support'))
sys.path.insert(0, HERE)
from harness import check, failures, free_ports  # noqa: E402
from kv_history_runner import (DEADLINE, check_linearizable,  # noqa: E402
                               count_statuses, finish_history_client, lincheck,
                               start_history_client, start_proxy, stop_all)
from run_kv_cluster import NET_OPTS, Proc  # noqa: E402

CLIENTS = 4
KEYS = 3
# Fault phases of proxy A: (name, seconds, control commands at its start).
PHASES = [
    ('latency', 1.5, ['set both.latency-ms 20', 'set both.jitter-ms 15',
                      'set down.slice-min 1', 'set down.slice-max 3']),
    ('reset', 1.5, ['clear', 'set both.latency-ms 5',
                    'set both.reset-after-ms 150']),
    ('hole', 1.0, ['clear', 'set down.black-hole 1']),
    ('healed', 1.5, ['clear']),
]
RUN_SECONDS = sum(p[1] for p in PHASES) + 0.5
REPLY_TIMEOUT_MS = 400
MIN_OK = 200


def plant_stale_read(ops):
    """Rewrites one late ok GET of key k to return the value of an ok SET s1
    of k that an ok SET s2 of k overwrote, where s1 returned before s2 was
    invoked and s2 returned before the GET was invoked: with unique values
    no order explains that read. Returns (index, key) or None.

    The GET is the latest one that qualifies, after the fault phases: the
    checker must decide it past the tens of unknown SETs those left behind
    (it leaves out the ones whose values no read saw; each other one is a
    branch of its search)."""
    puts = {}
    for o in ops:
        if o['kind'] == 'put' and o['status'] == 'ok':
            puts.setdefault(o['key'], []).append(o)
    for i in range(len(ops) - 1, -1, -1):
        g = ops[i]
        if g['kind'] != 'get' or g['status'] != 'ok':
            continue
        before = [s for s in puts.get(g['key'], [])
                  if s['return'] < g['invoke']]
        for s2 in sorted(before, key=lambda s: -s['return']):
            s1 = [s for s in before if s['return'] < s2['invoke'] and
                  s['input'] != s2['input'] and s['input'] != g['output']]
            if s1:
                g['output'] = s1[-1]['input']
                return i, g['key']
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kv', required=True)
    ap.add_argument('--proxy', required=True)
    ap.add_argument('--client', required=True)
    ap.add_argument('--lincheck', required=True)
    ap.add_argument('--keep', help='copy the histories into this folder')
    args = ap.parse_args()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix='kv_history_')
    history = os.path.join(work, 'history.jsonl')
    planted = os.path.join(work, 'planted.jsonl')
    procs, controls = [], []
    try:
        fport, *nports = free_ports(4)
        for i, port in enumerate(nports):
            n = Proc([args.kv, 'node', '--port', str(port)] + NET_OPTS,
                     f'node{i}')
            procs.append(n)
            if not check(n.wait_line('Serving kv node'), f'node {i} serving'):
                return 1
        # Proxy B: the front reaches node 1 through it.
        bport, bctl = start_proxy(args, nports[1], procs, 'proxy-B')
        controls.append(bctl)
        for line in ['set both.latency-ms 10', 'set both.jitter-ms 5']:
            check(bctl.cmd(line)[-1] == 'OK', f'proxy B: {line}')
        front_nodes = [f'127.0.0.1:{nports[0]}', f'127.0.0.1:{bport}',
                       f'127.0.0.1:{nports[2]}']
        front = Proc([args.kv, 'front', '--port', str(fport), '--nodes',
                      ','.join(front_nodes), '--timeout-ms=1000'] +
                     NET_OPTS, 'front')
        procs.append(front)
        if not check(front.wait_line('Serving on'), 'front serving'):
            return 1
        aport, actl = start_proxy(args, fport, procs, 'proxy-A')
        controls.append(actl)

        client = start_history_client(args, aport, history, procs, CLIENTS,
                                      KEYS, RUN_SECONDS, REPLY_TIMEOUT_MS)
        for name, seconds, commands in PHASES:
            for line in commands:
                reply = actl.cmd(line)
                check(reply[-1] == 'OK', f'{name}: proxy A: {line}')
            time.sleep(seconds)
        status = actl.cmd('status')
        print(f'  proxy A status: {status[0]}')
        check(' resets=0' not in status[0] and 'resets=' in status[0],
              'proxy A reset connections')
        ops = finish_history_client(client, history, DEADLINE)
        if ops is None:
            return 1
        n_ok, n_unknown, n_fail = count_statuses(ops)
        check(n_ok >= MIN_OK, f'at least {MIN_OK} ok operations ({n_ok})')
        check(n_unknown >= 1, f'some unknown operations ({n_unknown}): '
              'the faults bit')
        check(n_fail == 0, 'no refused request')
        check(all(any(o['key'] == f'hk{k}' and o['kind'] == 'put' and
                      o['status'] == 'ok' for o in ops)
                  for k in range(KEYS)), 'every key written')

        check_linearizable(args, history)

        # -- the pipeline catches a violation ---------------------------------
        hit = plant_stale_read(ops)
        if check(hit is not None, 'a GET to plant a stale read in'):
            i, key = hit
            print(f'  planted: operation {i} get({key}) -> '
                  f'{ops[i]["output"]!r}')
            with open(planted, 'w') as f:
                for o in ops:
                    f.write(json.dumps(o) + '\n')
            r = lincheck(args, planted)
            check(r is not None and r.returncode == 1 and key in r.stdout and
                  'not linearizable' in r.stdout,
                  f'lincheck on the planted stale read: exit 1 naming {key} '
                  f'(exit {r.returncode if r else None})')
    except (OSError, RuntimeError, ConnectionError) as e:
        check(False, f'error: {e!r}')
    finally:
        stop_all(procs, controls)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for f in (history, planted):
                if os.path.exists(f):
                    shutil.copy(f, args.keep)
        shutil.rmtree(work, ignore_errors=True)
    print(f'{len(failures)} failure(s) in {time.monotonic() - started:.1f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
