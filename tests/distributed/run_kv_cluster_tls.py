#!/usr/bin/env python3
"""kv_cluster with TLS on its node links (--tls-cert/--tls-key/--tls-ca;
docs/distributed.md, "Encrypted node links").

Certificates are made at test time in a temporary directory by
make_test_certs (tests/support/test_certs.hpp): a cluster CA signing one
certificate per process, an expired one, and a rogue CA's.

  0. refused before anything is served, naming the option: a partial set
     (--tls-cert alone), a missing file, a key that is not the
     certificate's, an expired certificate, a certificate of another CA;
  1. two storage nodes and a front, all with TLS: SET / GET round trips on
     keys of both nodes; `openssl s_client` with a cluster certificate
     sees TLS 1.3 and a certificate that verifies against the CA;
  2. a second front without TLS, and one whose certificate the rogue CA
     signed (it trusts both CAs, so only the nodes can refuse it): both
     start, report their nodes unavailable with the handshake hint, and
     answer "ERR node unavailable" at once, never hanging;
  3. SIGINT stops every process with exit 0.
Waits poll against deadlines; no fixed sleeps.

Usage: run_kv_cluster_tls.py --kv BIN --make-certs BIN
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'support'))
sys.path.insert(0, HERE)
from harness import check, failures, free_ports, run_bounded  # noqa: E402
from run_kv_cluster import (DEADLINE, Client, Proc, fnv1a,  # noqa: E402
                            poll)


def tls_args(d, stem, ca='cluster.ca.pem'):
    return [f'--tls-cert={d}/{stem}.pem', f'--tls-key={d}/{stem}.key',
            f'--tls-ca={d}/{ca}']


def refused_at_start(kv, d, port):
    """Each bad TLS option: exit 1, `error: --OPTION:` and the reason."""
    cases = [
        (['node', '--port', str(port), f'--tls-cert={d}/node0.pem'],
         ['error: --tls-key:', 'error: --tls-ca:', 'given: --tls-cert']),
        (['front', '--port', str(port), '--nodes', f'127.0.0.1:{port}',
          f'--tls-key={d}/front.key'],
         ['error: --tls-cert:', 'error: --tls-ca:', 'given: --tls-key']),
        (['node', '--port', str(port), f'--tls-cert={d}/missing.pem',
          f'--tls-key={d}/node0.key', f'--tls-ca={d}/cluster.ca.pem'],
         ['error: --tls-cert:', 'No such file']),
        (['node', '--port', str(port), f'--tls-cert={d}/node0.pem',
          f'--tls-key={d}/node1.key', f'--tls-ca={d}/cluster.ca.pem'],
         ['error: --tls-key:', 'not the key of the certificate']),
        (['node', '--port', str(port)] + tls_args(d, 'expired'),
         ['error: --tls-cert:', 'certificate has expired']),
        (['node', '--port', str(port)] + tls_args(d, 'foreign'),
         ['error: --tls-cert:', 'unable to get local issuer']),
    ]
    for args, expect in cases:
        r = run_bounded([kv] + args, DEADLINE, ' '.join(args[:1] + args[3:]))
        if r is None:
            continue
        check(r.returncode == 1 and 'Serving' not in r.stderr and
              all(e in r.stderr for e in expect),
              f'{" ".join(args)}: exit 1 and {expect} in stderr '
              f'(got {r.returncode}, {r.stderr.strip()!r})')


def s_client(d, port):
    """`openssl s_client` with a cluster certificate against a node."""
    argv = ['openssl', 's_client', '-connect', f'127.0.0.1:{port}',
            '-CAfile', f'{d}/cluster.ca.pem', '-cert', f'{d}/front.pem',
            '-key', f'{d}/front.key', '-brief']
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        return check(False, 'openssl s_client within the deadline')
    # stdout may carry the node's binary BASP handshake.
    out = (r.stdout + r.stderr).decode(errors='replace')
    check('Protocol version: TLSv1.3' in out and 'Verification: OK' in out,
          f'openssl s_client: TLS 1.3, the node\'s certificate verifies '
          f'against the CA ({out.strip()[:300]!r})')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kv', required=True, help='path of kv_cluster')
    ap.add_argument('--make-certs', required=True,
                    help='path of make_test_certs')
    args = ap.parse_args()
    if shutil.which('openssl') is None:
        print('openssl not found: skipped')
        return 77
    started = time.monotonic()
    d = tempfile.mkdtemp(prefix='shardwire-kv-tls-')
    procs = []
    try:
        r = run_bounded([args.make_certs, d, 'node0', 'node1', 'front'],
                        60, 'make_test_certs')
        if not check(r is not None and r.returncode == 0,
                     'test certificates made'):
            return 1
        fport, plain_port, rogue_port, *nports = free_ports(5)

        # -- 0. refused at start --------------------------------------------
        refused_at_start(args.kv, d, fport)

        # -- 1. a TLS cluster -----------------------------------------------
        for i, port in enumerate(nports):
            p = Proc([args.kv, 'node', '--port', str(port)] +
                     tls_args(d, f'node{i}'), f'node{i}')
            procs.append(p)
            check(p.wait_line('Serving kv node'), f'TLS node {i} serving')
        nodes_arg = ','.join(f'127.0.0.1:{p}' for p in nports)
        front = Proc([args.kv, 'front', '--port', str(fport), '--nodes',
                      nodes_arg] + tls_args(d, 'front'), 'front')
        procs.append(front)
        if not check(front.wait_line('Serving on'), 'TLS front serving'):
            return 1
        for i, port in enumerate(nports):
            up = f'node {i} (kv@127.0.0.1:{port}) up'
            poll(f'front finds node {i} over TLS',
                 lambda: any(up in line for line in list(front.lines)))
        c = Client(fport)
        keys = [f'key{i}' for i in range(20)]
        owners = {fnv1a(k) % len(nports) for k in keys}
        check(owners == set(range(len(nports))), 'keys cover both nodes')
        poll('every node up over TLS',
             lambda: all(c.cmd(f'GET {k}') != 'ERR node unavailable'
                         for k in keys))
        for k in keys:
            c.cmd(f'SET {k} v-{k}')
        got = [c.cmd(f'GET {k}') for k in keys]
        check(got == [f'v-{k}' for k in keys],
              'SET / GET round trips on both nodes over TLS')
        c.close()
        s_client(d, nports[0])

        # -- 2. fronts the nodes refuse -------------------------------------
        for name, port, extra, hint in [
                ('plain front', plain_port, [], 'may require TLS'),
                ('rogue front', rogue_port,
                 tls_args(d, 'foreign', ca='both-cas.pem'),
                 'TLS handshake failed')]:
            f = Proc([args.kv, 'front', '--port', str(port), '--nodes',
                      nodes_arg] + extra, name)
            procs.append(f)
            if not check(f.wait_line('Serving on'), f'{name} serving'):
                continue
            poll(f'{name}: nodes reported unavailable with the hint',
                 lambda: all(any(f'node {i} ' in line and hint in line
                                 for line in list(f.lines))
                             for i in range(len(nports))))
            fc = Client(port)
            t0 = time.monotonic()
            reply = fc.cmd(f'GET {keys[0]}')
            took = time.monotonic() - t0
            check(reply == 'ERR node unavailable' and took < 2,
                  f'{name}: GET -> {reply!r} in {took:.2f} s')
            fc.close()
            rc = f.stop()
            check(rc == 0, f'{name} exits 0 on SIGINT (got {rc})')

        # -- 3. clean stop --------------------------------------------------
        rc = front.stop()
        check(rc == 0, f'front exits 0 on SIGINT (got {rc})')
        for i, p in enumerate(procs[:len(nports)]):
            rc = p.stop()
            check(rc == 0, f'node {i} exits 0 on SIGINT (got {rc})')
    except (OSError, TimeoutError) as e:
        check(False, f'client error: {e!r}')
    finally:
        for p in procs:
            p.kill()
        if failures:
            for p in procs:
                print(f'--- stderr of {p.name} ---')
                for line in p.lines[-30:]:
                    print('    ' + line)
        shutil.rmtree(d, ignore_errors=True)
    took = time.monotonic() - started
    print(f'{len(failures)} failure(s) in {took:.1f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
