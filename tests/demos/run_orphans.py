#!/usr/bin/env python3
"""No child outlives its program, however the program dies (the orphan
guard, transports/detail/orphan_guard.hpp; docs/subprocess.md).

Every process started here carries a marker in its environment, which its
children and grandchildren inherit; "left" means a live (not zombie)
process with the marker once the program is gone.
  1. subprocess_date running `sh -c 'sleep 30 & sleep 30'` (a child and a
     grandchild in the child's group): SIGKILL of the program: nothing left
     within 2 s (the guard itself included);
  2. the same, with SIGKILL sent to the program's whole process group at
     once (the guard leads its own group and survives to do its job);
  3. the same, stopped by SIGTERM: the program's own shutdown kills them;
  4. fleet with 3 workers: SIGKILL of fleet: no worker left;
  5. subprocess_date --cgroup whose child starts a grandchild in a session
     of its own (setsid: out of reach of any process-group kill): SIGKILL
     of the program: nothing left (the guard kills the child's cgroup).
     Skipped, with the reason, where the program may not create cgroups.
Waits poll /proc against deadlines; no fixed sleeps.

Usage: run_orphans.py --subprocess-date BIN --fleet BIN
"""
import argparse
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import check, failures, marked_processes  # noqa: E402

MARK = 'SHARDWIRE_ORPHAN_TEST'
DEADLINE = 10.0   # for the children to appear
GONE_WITHIN = 2.0  # for everything to be gone after the program died


def marked(token):
    """Live processes whose environment holds MARK=token: pid -> comm."""
    return marked_processes(MARK, token)


def wait_for(pred, within):
    until = time.monotonic() + within
    while time.monotonic() < until:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    return pred()


def start(argv):
    token = uuid.uuid4().hex
    env = dict(os.environ, **{MARK: token})
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, token


def others(token, proc):
    return {p: c for p, c in marked(token).items() if p != proc.pid}


def case(what, argv, ready, kill):
    """Starts argv, waits until `ready(children)`, kills it with `kill`,
    then checks that every marked process is gone."""
    proc, token = start(argv)
    kids = wait_for(lambda: (lambda k: k if ready(k) else None)(
        others(token, proc)), DEADLINE)
    if not check(kids, f'{what}: its children are up '
                       f'({sorted(others(token, proc).values())})'):
        proc.kill()
        proc.wait()
        return
    kill(proc)
    proc.wait()
    left = wait_for(lambda: not marked(token), GONE_WITHIN)
    rest = marked(token)
    check(left, f'{what}: nothing left {GONE_WITHIN} s after it died '
                f'(had {sorted(kids.values())}, left: {sorted(rest.values())})')
    for pid in rest:  # a failed run must not leak either
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def two_sleeps(kids):
    return sum(1 for c in kids.values() if c == 'sleep') >= 2


def cgroup_unavailable():
    """Why this process may not create cgroups, or None (the same rule as
    transports/detail/child_cgroup.cpp: its own cgroup v2 dir, writable)."""
    rel = None
    with open('/proc/self/cgroup') as f:
        for line in f:
            if line.startswith('0::'):
                rel = line[3:].strip()
    if rel is None:
        return 'not in a cgroup v2 hierarchy'
    with open('/proc/self/mountinfo') as f:
        for line in f:
            head, _, tail = line.partition(' - ')
            if tail.split()[0] != 'cgroup2':
                continue
            point = head.split()[4]
            d = point + ('' if rel == '/' else rel)
            if os.access(d, os.W_OK) and os.access(d + '/cgroup.procs',
                                                   os.W_OK):
                return None
            return f'{d} is not writable'
    return 'no cgroup2 mount'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--subprocess-date', required=True)
    ap.add_argument('--fleet', required=True)
    args = ap.parse_args()
    sleeper = [args.subprocess_date, '--program=sh',
               '--args=["-c", "sleep 30 & sleep 30"]']
    case('SIGKILL of the program', sleeper, two_sleeps,
         lambda p: p.send_signal(signal.SIGKILL))
    case('SIGKILL of its process group', sleeper, two_sleeps,
         lambda p: os.killpg(p.pid, signal.SIGKILL))
    case('SIGTERM', sleeper, two_sleeps,
         lambda p: p.send_signal(signal.SIGTERM))
    fleet = [args.fleet, '--workers=3', '--mean-life-ms=60000', '--seed=3']
    case('SIGKILL of fleet', fleet,
         lambda kids: sum(1 for c in kids.values()
                          if c != 'shardwire-guard') >= 3,
         lambda p: p.send_signal(signal.SIGKILL))
    escaped = [args.subprocess_date, '--cgroup', '--program=sh',
               '--args=["-c", "setsid sleep 30 & sleep 30"]']
    why_not = cgroup_unavailable()
    if why_not:
        print(f'SKIPPED: a grandchild that left its session: {why_not}')
    else:
        case('SIGKILL, grandchild in its own session, child in a cgroup',
             escaped, two_sleeps, lambda p: p.send_signal(signal.SIGKILL))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
