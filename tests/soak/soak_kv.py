"""Random clients of kv_cluster's front, checked against a model.

Each slot owns its keys (no other slot writes them), so the store's answer
to a GET is known exactly: the value of the last SET that got OK, or NIL
after a DEL. A request whose reply is an error leaves the key uncertain
(either the old or the new value), and the next GET settles it. Requests
go in pipelined batches on connections of random length; replies must come
in request order. Some clients wait before reading their replies (slow
readers); some end with a half-close (write_eof, then read every reply and
EOF). Values carry their key and a counter, so a value of another key or an
older write cannot pass. Any ERR reply is counted and fails the run: the
cluster runs without faults.
"""
import asyncio
import string
import time

REPLY_TIMEOUT = 30.0
ALPHABET = (string.ascii_letters + string.digits + ' -_.').encode()


class KvStats:
    def __init__(self):
        self.connections = 0
        self.requests = 0
        self.by_op = {'SET': 0, 'GET': 0, 'DEL': 0, 'PING': 0}
        self.gets_checked = 0
        self.mismatches = []
        self.errors = []       # ERR replies, timeouts, lost connections
        self.half_closes = 0
        self.slow_pauses = 0
        self.bytes_sent = 0


class _Model:
    """Per key: the set of values the store may hold (None = absent)."""

    def __init__(self, keys):
        self.possible = {k: {None} for k in keys}

    def check(self, op, key, value, reply):
        """Applies one answered request; returns an error text or None."""
        can = self.possible[key]
        if op == 'SET':
            if reply == 'OK':
                self.possible[key] = {value}
                return None
            can.add(value)
            return f'SET {key} -> {reply!r}'
        if op == 'DEL':
            ok = (reply == 'OK' and can - {None}) or \
                 (reply == 'NIL' and None in can)
            self.possible[key] = {None} if reply in ('OK', 'NIL') \
                else can
            return None if ok else f'DEL {key} -> {reply!r}'
        got = None if reply == 'NIL' else reply
        if got in can:
            self.possible[key] = {got}
            return None
        return f'GET {key} -> {reply[:60]!r}, expected one of ' \
               f'{[v[:40] if v else v for v in can]}'


async def kv_slot(port, rng, bucket, stats, stop_at, slot,
                  keys_per_slot, half_close_ratio):
    keys = [f's{slot}k{i}' for i in range(keys_per_slot)]
    model = _Model(keys)
    counter = 0
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection('127.0.0.1', port), 10)
        except (OSError, asyncio.TimeoutError) as e:
            stats.errors.append(f'connect: {e!r}')
            await asyncio.sleep(1)
            continue
        stats.connections += 1
        half_close = rng.random() < half_close_ratio
        ops = []
        batches = rng.randrange(1, 40)
        try:
            for b in range(batches):
                if time.monotonic() >= stop_at and b > 0:
                    break
                ops = []
                for _ in range(rng.randrange(1, 50)):
                    op = rng.choices(['SET', 'GET', 'DEL', 'PING'],
                                     [4, 5, 1, 0.3])[0]
                    key = rng.choice(keys)
                    value = None
                    if op == 'SET':
                        counter += 1
                        pad = bytes(rng.choice(ALPHABET) for _ in range(
                            rng.randrange(0, rng.choice([8, 200, 3000]))))
                        value = f'{key}#{counter} {pad.decode()}'.rstrip()
                    ops.append((op, key, value))
                lines = ''.join(
                    'PING\n' if op == 'PING' else
                    f'SET {key} {value}\n' if op == 'SET' else
                    f'{op} {key}\n' for op, key, value in ops).encode()
                await bucket.take(len(ops))
                writer.write(lines)
                stats.bytes_sent += len(lines)
                last = half_close and b == batches - 1
                if last:
                    stats.half_closes += 1
                    writer.write_eof()
                await writer.drain()
                if rng.random() < 0.05:
                    stats.slow_pauses += 1
                    await asyncio.sleep(rng.uniform(0.2, 2.0))
                for op, key, value in ops:
                    raw = await asyncio.wait_for(reader.readline(),
                                                 REPLY_TIMEOUT)
                    if not raw.endswith(b'\n'):
                        raise ConnectionError(
                            f'connection ended with {len(ops)} replies owed '
                            f'(batch {b + 1} of {batches}'
                            f'{", half-closed" if last else ""})')
                    reply = raw.decode().rstrip('\n')
                    stats.requests += 1
                    stats.by_op[op] += 1
                    if op == 'PING':
                        if reply != 'PONG':
                            stats.mismatches.append(f'PING -> {reply!r}')
                        continue
                    if op == 'GET':
                        stats.gets_checked += 1
                    err = model.check(op, key, value, reply)
                    if err and reply.startswith('ERR'):
                        stats.errors.append(err)
                    elif err:
                        stats.mismatches.append(err)
                if last:
                    rest = await asyncio.wait_for(reader.read(), REPLY_TIMEOUT)
                    if rest:
                        stats.mismatches.append(
                            f'{len(rest)} bytes after the last reply')
        except (OSError, asyncio.TimeoutError, ConnectionError) as e:
            stats.errors.append(f'connection: {e!r}')
            # Replies of the batch are unknown: every key may hold anything
            # written to it so far; the next GETs settle it. Keep it simple:
            # forget what the model knew about this batch's keys.
            for op, key, value in ops:
                if op == 'SET':
                    model.possible[key].add(value)
                elif op == 'DEL':
                    model.possible[key].add(None)
        finally:
            writer.close()
        await asyncio.sleep(rng.uniform(0, 0.1))
