#!/usr/bin/env python3
"""netsim_demo with edge request counts (issue 15).

Clients still unfinished when the demo's tick cap ends the run are killed
with the simulated network; their connection_lost once wrote into a local of
main that was already destroyed ("double free detected" with --requests=0 or
--requests=1000). Each run here must end by itself with the expected exit
code and verdict, never by a signal:
  --requests=0      nothing to ask: PASS, exit 0
  --requests=1, 40  PASS, exit 0
  --requests=1000   more than the tick cap allows: FAIL verdict, exit 1
  --requests=-1, 2000000, x   refused before the run: error naming
                              --requests, exit 1

Usage: run_netsim_edges.py --demo BIN
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import check, failures, run_bounded  # noqa: E402

RUN_TIMEOUT = 30.0


def run(demo, arg):
    r = run_bounded([demo, arg], RUN_TIMEOUT, arg)
    if r is None:
        return None
    if r.returncode < 0:
        check(False, f'{arg}: killed by signal {-r.returncode}; stderr: '
                     f'{r.stderr.strip()[-300:]!r}')
        return None
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--demo', required=True, help='path of netsim_demo')
    args = ap.parse_args()

    for n, rc, verdict in [(0, 0, 'PASS'), (1, 0, 'PASS'), (40, 0, 'PASS'),
                           (1000, 1, 'FAIL')]:
        r = run(args.demo, f'--requests={n}')
        if r is None:
            continue
        check(r.returncode == rc, f'--requests={n}: exit {rc} '
                                  f'(got {r.returncode})')
        check(f'VERDICT: {verdict}' in r.stdout,
              f'--requests={n}: verdict {verdict}')
        check(r.stderr == '', f'--requests={n}: nothing on stderr '
                              f'(got {r.stderr.strip()[-300:]!r})')

    for bad in ['-1', '2000000', 'x']:
        r = run(args.demo, f'--requests={bad}')
        if r is None:
            continue
        check(r.returncode == 1, f'--requests={bad}: exit 1 '
                                 f'(got {r.returncode})')
        check(r.stderr.startswith('error: --requests:'),
              f'--requests={bad}: error names the option '
              f'(got {r.stderr.strip()!r})')
        check('VERDICT' not in r.stdout,
              f'--requests={bad}: refused before the run')

    print(f'{len(failures)} failure(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
