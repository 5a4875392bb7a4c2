"""Random UDP clients of the soak run against udp_echo_server.

Each slot owns a socket (replaced now and then, so the server sees new
peers), keeps at most `window` datagrams unanswered and checks that every
reply is byte-for-byte the datagram it sent (an 8-byte sequence number
heads each one). A datagram unanswered after LOSS_SECONDS counts as lost;
a reply that matches nothing sent, or differs, is corrupt.
"""
import asyncio
import time

LOSS_SECONDS = 5.0
# Unanswered datagrams per slot. Small on purpose: all slots' datagrams in
# flight (up to 8 KiB each) must fit the default 208 KiB socket receive
# buffer even while the server is descheduled, or loopback drops them.
WINDOW = 8


class UdpStats:
    def __init__(self):
        self.sent = 0
        self.answered = 0
        self.lost = 0
        self.late = 0          # answered after being counted lost
        self.corrupt = []
        self.bytes_sent = 0
        self.sockets = 0


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, stats):
        self.stats = stats
        self.outstanding = {}  # seq -> (payload, time sent)
        self.given_up = set()
        self.room = asyncio.Event()
        self.error = None

    def datagram_received(self, data, addr):
        seq = int.from_bytes(data[:8], 'big') if len(data) >= 8 else -1
        sent = self.outstanding.pop(seq, None)
        if sent is None:
            if seq in self.given_up:
                self.given_up.discard(seq)
                self.stats.late += 1
            else:
                self.stats.corrupt.append(f'unexpected reply of {len(data)}'
                                          f' bytes (seq {seq})')
            return
        if sent[0] != data:
            self.stats.corrupt.append(f'reply to seq {seq} differs '
                                      f'({len(data)} vs {len(sent[0])} bytes)')
        else:
            self.stats.answered += 1
        self.room.set()

    def error_received(self, exc):
        self.error = exc

    def expire(self, now):
        for seq, (_, t) in list(self.outstanding.items()):
            if now - t > LOSS_SECONDS:
                del self.outstanding[seq]
                self.given_up.add(seq)
                self.stats.lost += 1


async def udp_slot(port, rng, block, bucket, stats, stop_at, seq_base):
    loop = asyncio.get_running_loop()
    seq = seq_base
    while time.monotonic() < stop_at:
        transport, ep = await loop.create_datagram_endpoint(
            lambda: _Endpoint(stats), remote_addr=('127.0.0.1', port))
        stats.sockets += 1
        try:
            for _ in range(rng.randrange(50, 5000)):
                if time.monotonic() >= stop_at:
                    break
                while len(ep.outstanding) >= WINDOW:
                    ep.room.clear()
                    try:
                        await asyncio.wait_for(ep.room.wait(), 0.5)
                    except asyncio.TimeoutError:
                        ep.expire(time.monotonic())
                await bucket.take(1)
                size = rng.randrange(0, rng.choice([64, 1400, 8192]))
                off = rng.randrange(len(block) - size)
                seq += 1
                data = seq.to_bytes(8, 'big') + block[off:off + size]
                ep.outstanding[seq] = (data, time.monotonic())
                transport.sendto(data)
                stats.sent += 1
                stats.bytes_sent += len(data)
            # Collect the last replies before the socket goes.
            until = time.monotonic() + LOSS_SECONDS
            while ep.outstanding and time.monotonic() < until:
                await asyncio.sleep(0.02)
            ep.expire(float('inf'))
        finally:
            transport.close()
        if ep.error is not None:
            stats.corrupt.append(f'socket error {ep.error!r}')
