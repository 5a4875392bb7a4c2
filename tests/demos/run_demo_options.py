#!/usr/bin/env python3
"""Every demo's command line (issue 15): refused input never starts anything.

For each demo program (kv_cluster in both modes):
  - a stray positional argument (`tcp_echo_server 18997` once listened on
    8888) is refused: exit 1, the argument named on stderr, nothing on
    stdout, nothing served;
  - --help prints the help text on stderr and exits 0 (as the README says);
and program-specific values that make no sense are refused with
`error: --NAME: ...` and exit 1, e.g. `tour --timeout-ms=0` (which once
reported every working exchange as timed out).

No program here binds anything: each run ends by itself within a bound.

Usage: run_demo_options.py --bin-dir DIR   (the directory of the demos)
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import check, failures  # noqa: E402

RUN_TIMEOUT = 10.0
# Where --help goes: stderr, exit 0 (CAF's help text says so, as does the
# README).
HELP_STREAM = 'stderr'

DEMOS = [
    ['tcp_echo_server'], ['tcp_echo_client'], ['tls_echo_server'],
    ['tls_echo_client'], ['socketpair_echo'], ['tour'],
    ['udp_echo_server'], ['udp_echo_client'], ['subprocess_date'], ['fleet'],
    ['netsim_demo'], ['chaos_proxy'], ['kv_cluster', 'node'],
    ['kv_cluster', 'front'], ['lincheck'],
]

# (program and mode, arguments, option the error must name)
REFUSED = [
    (['tour'], ['--timeout-ms=0'], '--timeout-ms'),
    (['tour'], ['--timeout-ms=18446744073709551615'], '--timeout-ms'),
    (['tcp_echo_client'], ['--timeout-ms=0'], '--timeout-ms'),
    (['tcp_echo_client'], ['--port=0'], '--port'),
    # TLS demos: the server needs --cert and --key; every certificate file
    # must be readable (named by its option); the client's --port and
    # --timeout-ms as tcp_echo_client's.
    (['tls_echo_server'], [], '--cert'),
    (['tls_echo_server'], ['--cert=/nonexistent/s.pem'], '--key'),
    (['tls_echo_server'], ['--cert=/nonexistent/s.pem',
                           '--key=/nonexistent/s.key'], '--cert'),
    (['tls_echo_server'], ['--cert=/nonexistent/s.pem',
                           '--key=/nonexistent/s.key'], '--key'),
    (['tls_echo_server'], ['--cert=/nonexistent/s.pem',
                           '--key=/nonexistent/s.key',
                           '--ca=/nonexistent/ca.pem'], '--ca'),
    (['tls_echo_client'], ['--ca=/nonexistent/ca.pem'], '--ca'),
    (['tls_echo_client'], ['--ca=/'], '--ca'),
    (['tls_echo_client'], ['--cert=/nonexistent/c.pem'], '--key'),
    (['tls_echo_client'], ['--port=0'], '--port'),
    (['tls_echo_client'], ['--timeout-ms=0'], '--timeout-ms'),
    (['udp_echo_client'], ['--timeout-ms=0'], '--timeout-ms'),
    (['udp_echo_client'], ['--port=0'], '--port'),
    (['subprocess_date'], ['--program='], '--program'),
    (['netsim_demo'], ['--requests=-1'], '--requests'),
    (['fleet'], ['--workers=0'], '--workers'),
    (['chaos_proxy'], ['--upstream=127.0.0.1'], '--upstream'),
    (['chaos_proxy'], ['--api=nowhere'], '--api'),
    (['chaos_proxy'], ['--config=/nonexistent/proxies.json'], '--config'),
    (['kv_cluster', 'front'], ['--nodes=127.0.0.1:1', '--timeout-ms=0'],
     '--timeout-ms'),
    (['kv_cluster', 'node'], ['--nodes=127.0.0.1:1'], '--nodes'),
    # lincheck: a history file is required and must be readable; the model
    # and the bounds are checked before anything is read.
    (['lincheck'], [], '--history'),
    (['lincheck'], ['--history=/nonexistent/history.jsonl'], '--history'),
    (['lincheck'], ['--history=/dev/null', '--model=queue'], '--model'),
    (['lincheck'], ['--history=/dev/null', '--max-steps=0'], '--max-steps'),
    (['lincheck'], ['--history=/dev/null', '--time-limit=-1'],
     '--time-limit'),
    (['lincheck'], ['--history=/dev/null', '--time-limit=nan'],
     '--time-limit'),
    # TLS on node links: all three --tls-* or none, and files that exist.
    (['kv_cluster', 'node'], ['--tls-cert=/nonexistent/node.pem'],
     '--tls-key'),
    (['kv_cluster', 'front'], ['--nodes=127.0.0.1:1',
                               '--tls-cert=/nonexistent/front.pem',
                               '--tls-key=/nonexistent/front.key'],
     '--tls-ca'),
    (['kv_cluster', 'node'], ['--tls-cert=/nonexistent/node.pem',
                              '--tls-key=/nonexistent/node.key',
                              '--tls-ca=/nonexistent/ca.pem'], '--tls-cert'),
]


def run(bin_dir, prog, args):
    argv = [os.path.join(bin_dir, prog[0])] + prog[1:] + args
    print(f'  $ {" ".join(prog + args)}')
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(argv, None, e.stdout or '',
                                           e.stderr or '')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin-dir', required=True)
    args = ap.parse_args()

    for prog in DEMOS:
        name = ' '.join(prog)
        r = run(args.bin_dir, prog, ['18997'])
        check(r.returncode == 1 and r.stdout == '' and
              "'18997'" in r.stderr and 'Serving' not in r.stderr,
              f'{name} 18997: refused, exit 1 (got {r.returncode}, '
              f'stderr {r.stderr.strip()[:200]!r})')
        r = run(args.bin_dir, prog, ['--help'])
        text = r.stdout if HELP_STREAM == 'stdout' else r.stderr
        other = r.stderr if HELP_STREAM == 'stdout' else r.stdout
        check(r.returncode == 0 and '--' in text and other == '',
              f'{name} --help: exit 0, help on {HELP_STREAM} only '
              f'(got {r.returncode}, {len(r.stdout)} bytes on stdout, '
              f'{len(r.stderr)} on stderr)')

    for prog, extra, option in REFUSED:
        name = ' '.join(prog + extra)
        r = run(args.bin_dir, prog, extra)
        check(r.returncode == 1 and r.stdout == '' and
              f'error: {option}:' in r.stderr,
              f'{name}: exit 1 with "error: {option}:" (got '
              f'{r.returncode}, stderr {r.stderr.strip()[:200]!r})')

    print(f'{len(failures)} failure(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
