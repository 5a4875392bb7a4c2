"""Fault episodes on chaos_proxy through its control channel.

The proxy always runs with mild faults from its command line (latency,
jitter, slicing, bandwidth). Every few seconds the controller starts an
episode: either a benign change (other latency, slicing or bandwidth, no
byte may be lost) or a destructive one (sever, reset-after, cut-after),
which is undone a moment later. Destructive episodes are recorded as time
windows; a client connection that ends abnormally is an expected loss only
if its life overlaps one of them (plus a grace period for what was already
queued). The proxy's own counters (status) must show that the faults fired
and account for at least as many ends as the clients saw.
"""
import asyncio
import time

GRACE = 2.0  # seconds after an episode's undo during which it may still bite


class Control:
    """The line-based control channel: one command, reply up to OK/ERR."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.errors = []

    @classmethod
    async def connect(cls, port):
        r, w = await asyncio.wait_for(
            asyncio.open_connection('127.0.0.1', port), 10)
        return cls(r, w)

    async def ask(self, line):
        self.writer.write(line.encode() + b'\n')
        lines = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), 10)
            if not raw:
                raise ConnectionError('control channel closed')
            text = raw.decode().rstrip('\n')
            lines.append(text)
            if text == 'OK' or text.startswith('ERR'):
                if text != 'OK':
                    self.errors.append(f'{line!r} -> {text!r}')
                return lines

    async def status(self):
        """The counters as a dict of ints."""
        reply = await self.ask('status')
        return {k: int(v) for k, v in
                (kv.split('=') for kv in reply[0].split())}

    def close(self):
        self.writer.close()


class Chaos:
    def __init__(self, control, rng, baseline):
        self.control = control
        self.rng = rng
        self.baseline = baseline  # [(qualified key, value)] to restore
        self.windows = []         # [start, end] of destructive episodes
        self.episodes = {}        # name -> count

    def overlaps(self, t0, t1):
        """True if [t0, t1] meets a destructive episode (with grace)."""
        for a, b in self.windows:
            if a <= t1 and (b is None or b + GRACE >= t0):
                return True
        return False

    def _destructive(self):
        rng = self.rng
        return rng.choice([
            ('sever', ['sever'], []),
            ('down.reset-after-ms',
             [f'set down.reset-after-ms {rng.randrange(100, 3000)}'],
             ['set down.reset-after-ms -1']),
            ('up.reset-after',
             [f'set up.reset-after {rng.randrange(1, 1 << 20)}'],
             ['set up.reset-after -1']),
            ('down.cut-after',
             [f'set down.cut-after {rng.randrange(0, 1 << 20)}'],
             ['set down.cut-after -1']),
            ('up.cut-after',
             [f'set up.cut-after {rng.randrange(0, 1 << 20)}'],
             ['set up.cut-after -1']),
        ])

    def _benign(self):
        rng = self.rng
        restore = [f'set {k} {v}' for k, v in self.baseline]
        return rng.choice([
            ('latency', [f'set both.latency-ms {rng.randrange(0, 40)}',
                         f'set both.jitter-ms {rng.randrange(0, 10)}'],
             restore),
            ('slicing', [f'set down.slice-max {rng.randrange(1, 512)}',
                         f'set up.slice-max {rng.randrange(1, 4096)}',
                         'set both.slice-delay-us 100'], restore),
            ('bandwidth', [f'set down.bandwidth {rng.randrange(1, 8) << 17}'],
             restore),
        ])

    async def run(self, stop_at):
        """Episodes until stop_at; leaves the baseline faults in force."""
        rng = self.rng
        while True:
            await asyncio.sleep(min(rng.uniform(2.0, 6.0),
                                    max(0.0, stop_at - time.monotonic())))
            if time.monotonic() >= stop_at - 1.0:
                return
            destructive = rng.random() < 0.6
            name, do, undo = (self._destructive() if destructive
                              else self._benign())
            if destructive and not self.windows:
                # The first one always fires while clients are connected,
                # so "did the faults fire?" is a fair question even on a
                # short run.
                name, do, undo = 'sever', ['sever'], []
            self.episodes[name] = self.episodes.get(name, 0) + 1
            window = [time.monotonic(), None] if destructive else None
            if window:
                self.windows.append(window)
            for cmd in do:
                await self.control.ask(cmd)
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            for cmd in undo:
                await self.control.ask(cmd)
            if window:
                window[1] = time.monotonic()
