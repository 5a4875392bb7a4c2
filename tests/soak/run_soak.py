#!/usr/bin/env python3
"""Soak run of the demo servers under random clients (docs/soak.md).

Starts, each as its own process (own process group) on 127.0.0.1:
  echo    tcp_echo_server --persistent, driven directly;
  proxy   chaos_proxy with mild faults in front of a second tcp_echo_server,
          plus fault episodes (sever, reset-after, cut-after, latency,
          slicing, bandwidth changes) through its control channel;
  udp     udp_echo_server;
  kv      kv_cluster: three storage nodes and a front.
Then drives all of them at once for --seconds with bounded, rate-limited
random clients (soak_streams.py, soak_udp.py, soak_kv.py) and checks:
  * every echoed byte is the byte sent, in order; abnormal ends only on
    proxied connections that lived through a fault episode;
  * UDP replies equal their datagrams, loss at most --udp-max-loss;
  * kv answers agree with a model of the store, no ERR replies;
  * per server, after warm-up (20 % of the run, at least 10 s): open fds
    stay within a slack (the connections its clients may hold), RSS grows
    by at most --rss-growth-mib (and, on runs long enough for a slope to
    mean something, the slope of the second half stays under
    --rss-slope-mib-per-min); once the clients are gone the fd count is
    back to what it was before they came;
  * SIGINT stops every server with exit code 0 within --stop-timeout, and
    no process of the run's process groups is left.
Prints a summary, then `N passed, M failed` (one per check) as the last
line; exits 1 on any failure.

Usage: run_soak.py --build-dir build [--seconds 60] [--seed N]
                   [--report FILE]     (or each program with its own option)
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import free_ports  # noqa: E402 (after the lines above)
from soak_chaos import Chaos, Control  # noqa: E402
from soak_kv import KvStats, kv_slot
from soak_procs import Server, group_members, kill_group
from soak_series import summarize
from soak_streams import Bucket, StreamStats, echo_slot
from soak_udp import UdpStats, udp_slot

PROGRAMS = ('tcp_echo_server', 'udp_echo_server', 'chaos_proxy',
            'kv_cluster')
DRAIN_SECONDS = 45.0  # bound on clients finishing after the end of the run
MIB = 1024

# The proxy's faults between episodes (kept mild: every byte must pass).
PROXY_BASELINE = [('up.latency-ms', 1), ('down.latency-ms', 2),
                  ('both.jitter-ms', 1), ('down.slice-min', 1),
                  ('down.slice-max', 4096), ('up.slice-min', 1),
                  ('up.slice-max', 16384), ('both.slice-delay-us', 0),
                  ('down.bandwidth', 8 << 20), ('up.bandwidth', 0)]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build-dir', help='build folder (programs in demos/)')
    for p in PROGRAMS:
        ap.add_argument('--' + p.replace('_', '-'), help=f'path of {p}')
    ap.add_argument('--seconds', type=float, default=60.0)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--report', help='write the figures as JSON here')
    ap.add_argument('--shards', type=int, default=2)
    ap.add_argument('--scale', type=float, default=1.0,
                    help='multiplies every client rate')
    ap.add_argument('--sample-interval', type=float, default=None)
    ap.add_argument('--kv-half-close-ratio', type=float, default=0.2)
    ap.add_argument('--udp-max-loss', type=float, default=0.001)
    ap.add_argument('--rss-growth-mib', type=float, default=8.0)
    ap.add_argument('--rss-slope-mib-per-min', type=float, default=1.0)
    ap.add_argument('--stop-timeout', type=float, default=10.0)
    a = ap.parse_args()
    if 'TSAN_OPTIONS' in os.environ:
        # ThreadSanitizer keeps shadow memory for every byte touched (several
        # times its size): the RSS bounds scale under `make tsan`. They still
        # catch a leak that grows without bound.
        a.rss_growth_mib *= 4
        a.rss_slope_mib_per_min *= 4
    for p in PROGRAMS:
        if getattr(a, p) is None:
            if not a.build_dir:
                ap.error(f'--{p.replace("_", "-")} or --build-dir needed')
            setattr(a, p, os.path.join(a.build_dir, 'demos', p))
        if not os.access(getattr(a, p), os.X_OK):
            ap.error(f'{getattr(a, p)}: not an executable')
    if a.seconds < 10:
        ap.error('--seconds: at least 10')
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), 'big')
    if a.sample_interval is None:
        a.sample_interval = max(1.0, min(5.0, a.seconds / 120))
    return a


class Run:
    def __init__(self, a):
        self.a = a
        self.servers = []
        self.checks = []   # (name, ok, detail)
        self.figures = {}

    def check(self, name, ok, detail=''):
        self.checks.append((name, bool(ok), detail))
        print(f'  {"ok" if ok else "FAILED"}: {name}'
              + (f' ({detail})' if detail else ''), flush=True)
        return ok

    def start(self, name, argv, pattern, fd_slack, stream_out=True):
        s = Server(name, argv, fd_slack=fd_slack, keep_stdout=stream_out)
        self.servers.append(s)
        m = s.wait_line(pattern)
        if not self.check(f'{name} started', m is not None,
                          '' if m else 'no readiness line; last output: '
                          + ' | '.join(s.tail[-5:])):
            raise RuntimeError(f'{name} did not start')
        return m

    # -- servers -------------------------------------------------------------

    def start_servers(self):
        a = self.a
        sh = f'--shards={a.shards}'
        echo_re = r"Serving on \('127\.0\.0\.1', (\d+)\)"
        echo_cmd = [a.tcp_echo_server, '--persistent', '--quiet', '--port=0',
                    sh]
        # fd slack: one socket per client connection it may hold, plus 2.
        n = self.slots
        self.echo_port = int(self.start('echo', echo_cmd, echo_re,
                                        n['echo'] + 2).group(1))
        up_port = int(self.start('proxied-echo', echo_cmd, echo_re,
                                 n['proxy'] + 2).group(1))
        proxy_cmd = [a.chaos_proxy, '--listen=127.0.0.1:0', '--api=off',
                     f'--upstream=127.0.0.1:{up_port}',
                     '--control=127.0.0.1:0', sh, f'--seed={a.seed}']
        for key, value in PROXY_BASELINE:
            for d in (('up', 'down') if key.startswith('both.') else
                      (key.split('.')[0],)):
                proxy_cmd.append(f'--{d}.{key.split(".")[1]}={value}')
        self.proxy_port = int(self.start(
            'chaos_proxy', proxy_cmd, r'^listening on 127\.0\.0\.1:(\d+)$',
            2 * n['proxy'] + 2).group(1))
        proxy = self.servers[-1]
        m = proxy.wait_line(r'^control on 127\.0\.0\.1:(\d+)$')
        if not self.check('chaos_proxy control channel', m is not None):
            raise RuntimeError('no control channel')
        self.control_port = int(m.group(1))
        self.udp_port = int(self.start(
            'udp', [a.udp_echo_server, '--port=0', sh], echo_re, 2,
            stream_out=False).group(1))
        node_ports = free_ports(3)
        for i, p in enumerate(node_ports):
            self.start(f'kv-node{i}', [a.kv_cluster, 'node', '--port',
                                       str(p)], r'Serving kv node', 3)
        front = Server('kv-front', [
            a.kv_cluster, 'front', '--port=0', sh, '--nodes',
            ','.join(f'127.0.0.1:{p}' for p in node_ports)],
            fd_slack=n['kv'] + 2)
        self.servers.append(front)
        # "node i ... up" may come before or after "Serving on".
        want = {'serving': None, 'up': set()}
        until = time.monotonic() + 20
        while (want['serving'] is None or len(want['up']) < 3) and \
                time.monotonic() < until:
            m = front.wait_line(r'^(Serving on 127\.0\.0\.1:(\d+)|'
                                r'node (\d) \(.*\) up)',
                                until - time.monotonic())
            if m is None:
                break
            if m.group(2):
                want['serving'] = int(m.group(2))
            else:
                want['up'].add(m.group(3))
        if not self.check('kv-front started, 3 nodes up',
                          want['serving'] and len(want['up']) == 3,
                          f'up: {sorted(want["up"])}; last output: '
                          + ' | '.join(front.tail[-5:])):
            raise RuntimeError('kv front not ready')
        self.kv_port = want['serving']

    # -- the run -------------------------------------------------------------

    async def sampler(self, t0, stop):
        while not stop.is_set():
            t = time.monotonic() - t0
            for s in self.servers:
                s.sample(t)  # a dead one fails 'alive and sampled' later
            try:
                await asyncio.wait_for(stop.wait(), self.a.sample_interval)
            except asyncio.TimeoutError:
                pass

    async def drive(self):
        a = self.a
        rng = random.Random(a.seed)
        block = rng.randbytes((1 << 20) + 512 * 1024)
        n = self.slots
        control = await Control.connect(self.control_port)
        # A reply proves the proxy accepted the control connection, so its
        # socket is in the idle count (connect() returns at the handshake).
        await control.status()
        for s in self.servers:  # before any client, after the control conn
            s.idle_fds = s.sample(0.0)[1]
            s.samples.clear()
        t0 = time.monotonic()
        stop_at = t0 + a.seconds
        chaos = Chaos(control, random.Random(rng.random()),
                      PROXY_BASELINE)
        self.stats = {'echo': StreamStats(), 'proxy': StreamStats(),
                      'udp': UdpStats(), 'kv': KvStats()}
        st = self.stats
        buckets = {'echo': Bucket(3e6 * a.scale),
                   'proxy': Bucket(1.5e6 * a.scale),
                   'udp': Bucket(400 * a.scale),
                   'kv': Bucket(600 * a.scale)}

        def sub():
            return random.Random(rng.random())

        stop_sampling = asyncio.Event()
        sampler = asyncio.ensure_future(self.sampler(t0, stop_sampling))
        tasks = [echo_slot(self.echo_port, sub(), block, buckets['echo'],
                           st['echo'], stop_at) for _ in range(n['echo'])]
        tasks += [echo_slot(self.proxy_port, sub(), block, buckets['proxy'],
                            st['proxy'], stop_at, chaos.overlaps)
                  for _ in range(n['proxy'])]
        tasks += [udp_slot(self.udp_port, sub(), block, buckets['udp'],
                           st['udp'], stop_at, i << 48)
                  for i in range(n['udp'])]
        tasks += [kv_slot(self.kv_port, sub(), buckets['kv'], st['kv'],
                          stop_at, i, 40, a.kv_half_close_ratio)
                  for i in range(n['kv'])]
        clients = asyncio.gather(*tasks)
        chaos_task = asyncio.ensure_future(chaos.run(stop_at))
        progress = asyncio.ensure_future(self.progress(t0, stop_at))
        try:
            await asyncio.wait_for(asyncio.shield(clients),
                                   a.seconds + DRAIN_SECONDS)
            hung = False
        except asyncio.TimeoutError:
            hung = True
            clients.cancel()
        progress.cancel()
        await chaos_task
        self.check('clients finished within '
                   f'{DRAIN_SECONDS:.0f} s of the end', not hung)
        self.t_clients_done = time.monotonic() - t0
        # Quiesce: every client connection is closed; fds must return to
        # their idle count (a few closes may still be in flight).
        until = time.monotonic() + 10
        while time.monotonic() < until:
            counts = [s.sample(time.monotonic() - t0) for s in self.servers]
            if all(c and c[1] <= s.idle_fds
                   for c, s in zip(counts, self.servers)):
                break
            await asyncio.sleep(0.2)
        for s in self.servers:
            c = s.sample(time.monotonic() - t0)
            s.final_fds = c[1] if c else None
        stop_sampling.set()
        await sampler
        self.proxy_status = await control.status()
        self.chaos = chaos
        control.close()
        self.t0 = t0

    async def progress(self, t0, stop_at):
        """A line every ~10 % of the run, so a long run shows it is alive."""
        step = max(10.0, self.a.seconds / 10)
        while True:
            await asyncio.sleep(step)
            st = self.stats
            print(f'  [{time.monotonic() - t0:6.0f} s] echo '
                  f'{st["echo"].bytes_verified >> 20} MiB, proxy '
                  f'{st["proxy"].bytes_verified >> 20} MiB, udp '
                  f'{st["udp"].answered}, kv {st["kv"].requests}; rss '
                  + ' '.join(f'{s.name}={s.samples[-1][1] // MIB}M'
                             for s in self.servers if s.samples),
                  flush=True)

    # -- verdicts ------------------------------------------------------------

    def judge_clients(self):
        st = self.stats
        for name in ('echo', 'proxy'):
            s = st[name]
            self.check(f'{name}: every echoed byte matches', not s.corrupt,
                       '; '.join(s.corrupt[:3]))
            self.check(f'{name}: no unexpected connection end',
                       not s.unexpected and not s.connect_failures,
                       '; '.join((s.unexpected + s.connect_failures)[:3]))
            self.check(f'{name}: traffic verified',
                       s.ok > 0 and s.bytes_verified > 0,
                       f'{s.ok} connections, {s.bytes_verified} bytes')
        ps, ch = self.proxy_status, self.chaos
        destructive = len(ch.windows)
        fired = ps.get('cuts', 0) + ps.get('resets', 0)
        self.check('proxy: fault episodes fired',
                   destructive == 0 or fired > 0,
                   f'{destructive} destructive episodes, cuts '
                   f'{ps.get("cuts")}, resets {ps.get("resets")}')
        self.check('proxy: faulted ends accounted by the proxy',
                   st['proxy'].faulted <= fired +
                   ps.get('upstream_failures', 0),
                   f'{st["proxy"].faulted} client-side <= {fired} proxy-side')
        self.check('proxy: control commands accepted',
                   not ch.control.errors, '; '.join(ch.control.errors[:3]))
        u = st['udp']
        loss = u.lost / u.sent if u.sent else 1.0
        self.check('udp: replies equal their datagrams', not u.corrupt,
                   '; '.join(u.corrupt[:3]))
        self.check(f'udp: loss <= {self.a.udp_max_loss:g}',
                   u.sent > 0 and loss <= self.a.udp_max_loss,
                   f'{u.lost} of {u.sent} ({loss:.2e}), {u.late} late')
        k = st['kv']
        self.check('kv: answers agree with the model', not k.mismatches,
                   '; '.join(k.mismatches[:3]))
        self.check('kv: no errors', not k.errors, '; '.join(k.errors[:3]))
        self.check('kv: GETs checked', k.gets_checked > 0,
                   f'{k.gets_checked} GETs')

    def judge_series(self):
        a = self.a
        warm = min(max(0.2 * a.seconds, 10.0), 0.5 * a.seconds)
        self.warm_at = warm
        self.series = {}
        for s in self.servers:
            sm = summarize(s.samples, warm)
            self.series[s.name] = sm
            if not self.check(f'{s.name}: alive and sampled',
                              sm is not None and s.alive()):
                continue
            sm['fds_idle'] = s.idle_fds
            sm['fds_final'] = s.final_fds
            self.check(f'{s.name}: fds flat after warm-up',
                       sm['fds_max'] - sm['fds_min'] <= s.fd_slack,
                       f'{sm["fds_min"]}..{sm["fds_max"]}, slack '
                       f'{s.fd_slack}')
            self.check(f'{s.name}: fds back to idle after the clients',
                       s.final_fds is not None and s.final_fds <= s.idle_fds,
                       f'idle {s.idle_fds}, final {s.final_fds}')
            self.check(f'{s.name}: RSS growth <= {a.rss_growth_mib:g} MiB',
                       sm['rss_growth_kib'] <= a.rss_growth_mib * MIB,
                       f'{sm["rss_warm_kib"] / MIB:.1f} -> '
                       f'{sm["rss_end_kib"] / MIB:.1f} MiB')
            if sm['slope_checked']:
                slope = sm['rss_slope_kib_per_min'] / MIB
                self.check(f'{s.name}: RSS slope <= '
                           f'{a.rss_slope_mib_per_min:g} MiB/min',
                           slope <= a.rss_slope_mib_per_min,
                           f'{slope:.3f} MiB/min over the last '
                           f'{sm["slope_span_s"]:.0f} s')

    def stop_servers(self):
        # Front doors first: the proxy before its upstream, the kv front
        # before its nodes.
        order = ['chaos_proxy', 'proxied-echo', 'echo', 'udp', 'kv-front']
        for s in sorted(self.servers, key=lambda s: (
                order.index(s.name) if s.name in order else len(order))):
            rc = s.stop(self.a.stop_timeout)
            self.check(f'{s.name}: exit 0 on SIGINT within '
                       f'{self.a.stop_timeout:g} s', rc == 0,
                       f'rc {rc}, {s.exit_seconds:.2f} s')

    def judge_groups(self):
        left = group_members({s.pgid for s in self.servers})
        for pgid in {s.pgid for s in self.servers}:
            kill_group(pgid)
        self.check('no process left in the soak process groups', not left,
                   ', '.join(f'{pid} {state}' for pid, state in left))

    # -- output --------------------------------------------------------------

    def print_summary(self):
        st = self.stats
        print('\nclients:')
        for name in ('echo', 'proxy'):
            s = st[name]
            print(f'  {name:6} {s.connections:7} conns  ok {s.ok}  aborted '
                  f'{s.aborted}  faulted {s.faulted}  half-closes '
                  f'{s.half_closes}  slow pauses {s.slow_pauses}  sent '
                  f'{s.bytes_sent / 2**20:.1f} MiB  verified '
                  f'{s.bytes_verified / 2**20:.1f} MiB  lost(faulted) '
                  f'{s.bytes_lost / 2**20:.2f} MiB  ends {s.ends}')
        u, k = st['udp'], st['kv']
        print(f'  udp    {u.sent} datagrams ({u.bytes_sent / 2**20:.1f} MiB) '
              f'on {u.sockets} sockets, answered {u.answered}, lost '
              f'{u.lost}, late {u.late}')
        print(f'  kv     {k.connections} conns, {k.requests} requests '
              f'{k.by_op}, GETs checked {k.gets_checked}, half-closes '
              f'{k.half_closes}, slow pauses {k.slow_pauses}')
        print(f'  chaos  episodes {self.chaos.episodes}; proxy status '
              f'{self.proxy_status}')
        print(f'\nservers (warm-up until {self.warm_at:.0f} s; RSS MiB):')
        print(f'  {"process":13} {"start":>6} {"warm":>6} {"end":>6} '
              f'{"max":>6} {"growth":>7} {"slope/min":>9}  '
              f'{"fds idle":>8} {"min":>4} {"max":>4} {"final":>5}')
        for s in self.servers:
            sm = self.series.get(s.name)
            if not sm:
                print(f'  {s.name:13} (no samples)')
                continue
            slope = (f'{sm["rss_slope_kib_per_min"] / MIB:9.3f}'
                     if sm['slope_checked'] else f'{"n/a":>9}')
            print(f'  {s.name:13} {sm["rss_start_kib"] / MIB:6.1f} '
                  f'{sm["rss_warm_kib"] / MIB:6.1f} '
                  f'{sm["rss_end_kib"] / MIB:6.1f} '
                  f'{sm["rss_max_kib"] / MIB:6.1f} '
                  f'{sm["rss_growth_kib"] / MIB:7.2f} {slope}  '
                  f'{s.idle_fds:8} {sm["fds_min"]:4} {sm["fds_max"]:4} '
                  f'{s.final_fds if s.final_fds is not None else "-":>5}')

    def write_report(self, path):
        st = self.stats
        rep = {
            'seed': self.a.seed, 'seconds': self.a.seconds,
            'scale': self.a.scale, 'shards': self.a.shards,
            'warm_up_s': self.warm_at,
            'clients': {k: {f: v for f, v in vars(s).items()}
                        for k, s in st.items()},
            'chaos': {'episodes': self.chaos.episodes,
                      'destructive_windows': len(self.chaos.windows),
                      'proxy_status': self.proxy_status},
            'servers': {s.name: {'argv': s.argv, 'summary':
                                 self.series.get(s.name),
                                 'idle_fds': s.idle_fds,
                                 'final_fds': s.final_fds,
                                 'exit_code': s.exit_code,
                                 'exit_seconds': s.exit_seconds,
                                 'samples': s.samples}
                        for s in self.servers},
            'checks': [{'name': n, 'ok': ok, 'detail': d}
                       for n, ok, d in self.checks],
        }
        with open(path, 'w') as f:
            json.dump(rep, f, indent=1)


def main():
    a = parse_args()
    # A CTest timeout or kill sends SIGTERM: stop the servers on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = Run(a)
    run.slots = {k: max(1, round(v * min(a.scale, 4)))
                 for k, v in {'echo': 4, 'proxy': 4, 'udp': 2,
                              'kv': 4}.items()}
    print(f'soak: {a.seconds:g} s, seed {a.seed}, scale {a.scale:g}, '
          f'slots {run.slots}', flush=True)
    started = False
    try:
        run.start_servers()
        started = True
        asyncio.run(run.drive())
        run.judge_clients()
        run.judge_series()
        run.stop_servers()
    except RuntimeError as e:
        run.check('setup', False, str(e))
    except (KeyboardInterrupt, SystemExit):
        run.check('ran to the end', False, 'interrupted (SIGINT/SIGTERM)')
    finally:
        for s in run.servers:
            if s.alive():
                kill_group(s.pgid)
                s.proc.wait()
        if run.servers:
            run.judge_groups()
    if started and hasattr(run, 'series'):
        run.print_summary()
        if a.report:
            run.write_report(a.report)
    failed = [n for n, ok, _ in run.checks if not ok]
    if failed:
        print('\nfailed: ' + '; '.join(failed))
    print(f'{len(run.checks) - len(failed)} passed, {len(failed)} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
