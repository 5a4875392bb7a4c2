"""Random TCP echo clients of the soak run (direct and through chaos_proxy).

A connection sends random-sized slices of one random block, keeps at most
`window` bytes in flight (pipelining, yet bounded: a client that stops
reading cannot make a server buffer more than that), and checks every echoed
byte against what it sent, in order. It ends in one of three ways:
  half-close  write_eof, then read to EOF: everything must have come back;
  close       wait until everything came back, then close;
  abort       RST with bytes in flight (the client's choice: only the
              prefix that arrived is checked).
Any other end (EOF too early, reset, error, stall) is abnormal. Through the
proxy an abnormal end is an expected loss when the connection lived during
a fault episode (soak_chaos.py); everywhere else it is a failure. Corrupt
bytes are a failure everywhere.
"""
import asyncio
import math
import time

STALL_SECONDS = 30.0     # no echoed byte for this long while owed one: stall
CONNECT_TIMEOUT = 10.0
MAX_MESSAGE = 256 * 1024


class Bucket:
    """Token bucket shared by a component's clients (bytes or requests/s)."""

    def __init__(self, rate):
        self.rate = float(rate)
        self.tokens = 0.0
        self.t = time.monotonic()

    async def take(self, n):
        now = time.monotonic()
        self.tokens = min(self.rate * 0.25,
                          self.tokens + (now - self.t) * self.rate)
        self.t = now
        self.tokens -= n
        if self.tokens < 0:  # in debt: wait until it is paid
            await asyncio.sleep(-self.tokens / self.rate)


class StreamStats:
    def __init__(self):
        self.connections = 0
        self.ok = 0            # fully verified
        self.aborted = 0       # ended by the client's RST
        self.faulted = 0       # abnormal end during a fault episode
        self.unexpected = []   # abnormal ends outside fault episodes
        self.corrupt = []      # wrong bytes: always a failure
        self.bytes_sent = 0
        self.bytes_verified = 0
        self.bytes_lost = 0    # sent, never echoed, on faulted connections
        self.half_closes = 0
        self.slow_pauses = 0
        self.connect_failures = []
        self.ends = {}         # abnormal end kind -> count


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))) \
        if hi > lo else lo


async def unless_done(aw, reading):
    """Awaits `aw` unless `reading` ends first; True if `aw` completed."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait([task, reading],
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # re-raises a write error
        return True
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, OSError):
        pass
    return False


async def echo_connection(port, rng, block, bucket, stats, stop_at,
                          fault_window=None):
    """One client connection; records its outcome in `stats`."""
    t_start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection('127.0.0.1', port), CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as e:
        if fault_window and fault_window(t_start, time.monotonic()):
            stats.faulted += 1
        else:
            stats.connect_failures.append(repr(e))
        return
    stats.connections += 1
    window = rng.choice([4096, 32768, 131072, 524288])
    messages = log_uniform(rng, 1, 400)
    lifetime = rng.uniform(0.05, 12.0)
    end_mode = rng.choices(['half-close', 'close', 'abort'], [5, 4, 1])[0]
    slow = rng.random() < 0.25
    pending = bytearray()   # sent, not yet echoed
    room = asyncio.Event()  # set when pending shrank
    state = {'eof': False, 'eof_sent': False, 'error': None,
             'corrupt': None, 'verified': 0}

    async def read_loop():
        while True:
            if slow and rng.random() < 0.05:
                stats.slow_pauses += 1
                await asyncio.sleep(rng.uniform(0.2, 3.0))
            try:
                chunk = await asyncio.wait_for(reader.read(65536),
                                               STALL_SECONDS)
            except asyncio.TimeoutError:
                if pending or state['eof_sent']:
                    state['error'] = 'stall' if pending else 'no-eof'
                    return
                continue
            if not chunk:
                state['eof'] = True
                return
            n = len(chunk)
            if n > len(pending) or pending[:n] != chunk:
                state['corrupt'] = (f'{n} bytes at offset {state["verified"]}'
                                    f' do not match ({len(pending)} owed)')
                return
            del pending[:n]
            state['verified'] += n
            room.set()

    reading = asyncio.ensure_future(read_loop())
    ended = 'ok'
    try:
        deadline = min(stop_at, t_start + lifetime)
        abort_after = rng.randrange(messages) if end_mode == 'abort' else -1
        for i in range(messages):
            if time.monotonic() >= deadline or reading.done():
                break
            if i == abort_after:
                break
            size = log_uniform(rng, 1, MAX_MESSAGE)
            while pending and len(pending) + size > window:
                room.clear()
                if not await unless_done(room.wait(), reading):
                    break
            if reading.done():
                break
            await bucket.take(size)
            off = rng.randrange(len(block) - size)
            data = block[off:off + size]
            pending += data
            writer.write(data)
            stats.bytes_sent += size
            if not await unless_done(writer.drain(), reading):
                break
            if rng.random() < 0.3:
                await asyncio.sleep(rng.uniform(0, 0.05))
        if end_mode == 'abort':
            writer.transport.abort()
            reading.cancel()
            ended = 'aborted'
        elif end_mode == 'half-close':
            stats.half_closes += 1
            if not reading.done():
                state['eof_sent'] = True
                writer.write_eof()
            await reading
        else:
            while pending and not reading.done():
                room.clear()
                await unless_done(room.wait(), reading)
    except (OSError, asyncio.IncompleteReadError) as e:
        state['error'] = type(e).__name__
    finally:
        if not reading.done():
            reading.cancel()
        try:
            await reading
        except asyncio.CancelledError:
            pass
        except (OSError, asyncio.IncompleteReadError) as e:
            state['error'] = state['error'] or type(e).__name__
        if not writer.transport.is_closing():
            writer.close()
    t_end = time.monotonic()
    stats.bytes_verified += state['verified']
    if state['corrupt']:
        stats.corrupt.append(state['corrupt'])
        return
    if ended == 'aborted':
        stats.aborted += 1
        return
    if state['error'] is None and not pending and \
            (end_mode != 'half-close' or state['eof']):
        stats.ok += 1
        return
    kind = state['error'] or ('early-eof' if state['eof'] else 'short')
    stats.ends[kind] = stats.ends.get(kind, 0) + 1
    if fault_window and fault_window(t_start, t_end):
        stats.faulted += 1
        stats.bytes_lost += len(pending)
    else:
        stats.unexpected.append(
            f'{kind} after {state["verified"]} of '
            f'{state["verified"] + len(pending)} bytes, '
            f'{t_end - t_start:.1f} s, mode {end_mode}')


async def echo_slot(port, rng, block, bucket, stats, stop_at,
                    fault_window=None):
    """Runs connections one after another until stop_at."""
    while time.monotonic() < stop_at:
        await echo_connection(port, rng, block, bucket, stats, stop_at,
                              fault_window)
        await asyncio.sleep(rng.uniform(0, 0.2))
