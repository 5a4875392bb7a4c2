#!/usr/bin/env python3
"""The replicated (ABD quorum) kv store as processes (issue 21;
docs/distributed.md, "As processes").

  clients (kv_history_client) -> chaos_proxy (latency) -> qfront -> replica 0
                                                                 -> replica 1
                                                                 -> replica 2

Three `kv_cluster replica` processes with --data files in a temp folder and
a `kv_cluster qfront` run on loopback. The script:

  1. writes DURABLE_KEYS keys through the qfront (each must answer OK);
  2. runs kv_history_client (random GET/SET over three keys) through a
     chaos_proxy with latency, kills replica 0 with SIGKILL mid-run and
     later restarts it on the same port and data file; ok operations must
     go on while it is down (a majority is up), and `lincheck --model=kv`
     must find the history linearizable;
  3. reads the durable keys back (unchanged);
  4. kills replicas 1 and 2: a GET and a SET must answer `ERR timeout`
     (unknown) within the deadline instead of hanging;
  5. restarts 1 and 2 on their files and kills replica 0: the durable keys
     are read back from the two restarted replicas' files alone.

Every process is killed at the end, whatever happens.

Usage: run_kv_quorum_processes.py --kv BIN --proxy BIN --client BIN
                                  --lincheck BIN [--keep DIR]
"""
import argparse
import os
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'support'))
sys.path.insert(0, HERE)
from harness import check, failures, free_ports  # noqa: E402
from kv_history_runner import (DEADLINE, check_linearizable,  # noqa: E402
                               count_statuses, finish_history_client,
                               start_history_client, start_proxy, stop_all)
from run_kv_cluster import Proc  # noqa: E402

OP_TIMEOUT_MS = 1000       # the qfront's --timeout-ms
CLIENTS = 4
KEYS = 3
RUN_SECONDS = 6.0
KILL_AT = 1.5              # seconds into the run: SIGKILL replica 0
RESTART_AT = 3.5           # ... and restart it
REPLY_TIMEOUT_MS = 3000    # > OP_TIMEOUT_MS: the qfront answers first
DURABLE_KEYS = 10
MIN_OK = 100


class Client:
    """One blocking line client of the qfront."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.buf = b''

    def ask(self, line, timeout=5.0):
        self.sock.settimeout(timeout)
        self.sock.sendall(line.encode() + b'\n')
        while b'\n' not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError('qfront closed the connection')
            self.buf += chunk
        one, self.buf = self.buf.split(b'\n', 1)
        return one.decode()

    def close(self):
        self.sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kv', required=True)
    ap.add_argument('--proxy', required=True)
    ap.add_argument('--client', required=True)
    ap.add_argument('--lincheck', required=True)
    ap.add_argument('--keep', help='copy the history into this folder')
    args = ap.parse_args()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix='kv_quorum_')
    history = os.path.join(work, 'history.jsonl')
    procs, controls, replicas = [], [], {}
    kills = 0

    def start_replica(i):
        p = Proc([args.kv, 'replica', '--port', str(rports[i]),
                  f'--data={os.path.join(work, f"replica{i}.log")}'],
                 f'replica{i}')
        procs.append(p)
        replicas[i] = p
        if not check(p.wait_line('Serving kv replica'), f'replica {i} serving'):
            raise RuntimeError(f'replica {i} did not start')

    def kill_replica(i):
        nonlocal kills
        replicas[i].proc.kill()  # SIGKILL: no clean shutdown
        replicas[i].proc.wait()
        kills += 1

    def read_durable(c, what):
        got = [c.ask(f'GET dk{k}') for k in range(DURABLE_KEYS)]
        want = [f'durable-{k}' for k in range(DURABLE_KEYS)]
        check(got == want, f'{what}: every acknowledged durable SET reads '
              f'back (got {got})')

    try:
        qport, *rports = free_ports(4)
        for i in range(3):
            start_replica(i)
        front = Proc([args.kv, 'qfront', '--port', str(qport), '--replicas',
                      ','.join(f'127.0.0.1:{p}' for p in rports),
                      '--writer-id=1', f'--timeout-ms={OP_TIMEOUT_MS}'],
                     'qfront')
        procs.append(front)
        if not check(front.wait_line('Serving on'), 'qfront serving'):
            return 1
        aport, actl = start_proxy(args, qport, procs, 'proxy')
        controls.append(actl)
        for line in ['set both.latency-ms 5', 'set both.jitter-ms 3']:
            check(actl.cmd(line)[-1] == 'OK', f'proxy: {line}')

        # -- 1: acknowledged writes ------------------------------------------
        c = Client(qport)
        acks = [c.ask(f'SET dk{k} durable-{k}') for k in range(DURABLE_KEYS)]
        check(acks == ['OK'] * DURABLE_KEYS, f'durable SETs acknowledged '
              f'({acks})')

        # -- 2: a history with a replica killed and restarted -----------------
        client = start_history_client(args, aport, history, procs, CLIENTS,
                                      KEYS, RUN_SECONDS, REPLY_TIMEOUT_MS)
        t0 = time.monotonic()
        time.sleep(KILL_AT)
        kill_replica(0)
        down_from = time.monotonic_ns()
        time.sleep(max(0.0, t0 + RESTART_AT - time.monotonic()))
        down_until = time.monotonic_ns()
        start_replica(0)
        ops = finish_history_client(client, history, RUN_SECONDS + DEADLINE)
        if ops is None:
            return 1
        ok_down = sum(o['status'] == 'ok' and o['invoke'] >= down_from and
                      o['return'] <= down_until for o in ops)
        n_ok, _, n_fail = count_statuses(
            ops, f'; {ok_down} ok while replica 0 was down; {kills} kill(s)')
        check(n_ok >= MIN_OK, f'at least {MIN_OK} ok operations ({n_ok})')
        check(ok_down >= 10, f'a majority serves while replica 0 is down '
              f'({ok_down} ok operations)')
        check(n_fail == 0, 'no refused request')
        check_linearizable(args, history)

        # -- 3: the acknowledged writes survived ------------------------------
        read_durable(c, 'after the restart of replica 0')

        # -- 4: no majority: unknown within the deadline, no hang -------------
        kill_replica(1)
        kill_replica(2)
        for line in ('GET dk0', 'SET dk-lost x'):
            t1 = time.monotonic()
            reply = c.ask(line, timeout=DEADLINE)
            took = time.monotonic() - t1
            check(reply == 'ERR timeout' and took < OP_TIMEOUT_MS / 1000 + 1,
                  f'2 of 3 down: {line} -> {reply!r} in {took:.2f} s '
                  f'(ERR timeout within the deadline)')

        # -- 5: served again from the restarted replicas' files ---------------
        start_replica(1)
        start_replica(2)
        kill_replica(0)
        t1 = time.monotonic()
        # The qfront reconnects at its next poll; the first answers may
        # still be timeouts while it does.
        while c.ask('PING') == 'PONG' and time.monotonic() - t1 < DEADLINE:
            if c.ask('GET dk0') == 'durable-0':
                break
            time.sleep(0.05)
        read_durable(c, 'from replicas 1 and 2 restarted on their files')
        check(c.ask('SET dk-new y') == 'OK' and c.ask('GET dk-new') == 'y',
              'replicas 1 and 2 serve writes again')
        print(f'  {kills} SIGKILL(s) of replicas in all')
        c.close()
    except (OSError, RuntimeError, ConnectionError) as e:
        check(False, f'error: {e!r}')
    finally:
        stop_all(procs, controls)
        if args.keep and os.path.exists(history):
            os.makedirs(args.keep, exist_ok=True)
            shutil.copy(history, args.keep)
        shutil.rmtree(work, ignore_errors=True)
    print(f'{len(failures)} failure(s) in {time.monotonic() - started:.1f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
