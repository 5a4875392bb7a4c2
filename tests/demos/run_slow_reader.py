#!/usr/bin/env python3
"""tcp_echo_server --persistent against clients that send and never read
(issue 15): the server must stop reading once its replies back up, so its
memory stays flat while the clients' sends block, and every byte still comes
back once the clients read. Before reads followed writes, a client sending
200 MB grew the server by 200 MB, and by 416 MB behind a bandwidth-limited
chaos_proxy. With --proxy the same runs again through chaos_proxy with a
bandwidth limit on the way back, and the proxy's RSS is bounded too.

Checks, per run: each client was held back (sent less than its budget), the
server's RSS grew by less than BOUND_PER_CONN per connection plus a fixed
slack, every echoed byte matches what was sent, and SIGINT ends the server
with exit code 0."""
import argparse
import hashlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

CLIENTS = 2
BUDGET = 100 * 1024 * 1024          # bytes each client tries to send
STALL_S = 1.0                       # no progress this long: the peer stopped
# The server may hold its write high-water mark (64 KiB) plus one read
# (256 KiB) per connection; allocator and page granularity add some.
BOUND_PER_CONN = 64 * 1024 + 256 * 1024
SLACK = 6 * 1024 * 1024
# ThreadSanitizer keeps shadow memory for every byte the program touches
# (several times its size): under `make tsan` (TSAN_OPTIONS set) the bound
# scales by this factor. It still catches unbounded growth: the bug this
# test guards against grew the server by 200 MB.
TSAN_FACTOR = 4 if "TSAN_OPTIONS" in os.environ else 1

BLOCK = bytes((i * 7 + i // 251) & 0xFF for i in range(1 << 16))


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start_server(exe, extra):
    proc = subprocess.Popen(
        [exe, "--persistent", "--quiet", "--port=0", "--shards=2"] + extra,
        stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"\('127\.0\.0\.1', (\d+)\)", line)
    if not m:
        proc.kill()
        sys.exit(f"server did not report its port: {line!r}")
    return proc, int(m.group(1))


def start_proxy(exe, upstream_port):
    proc = subprocess.Popen(
        [exe, "--listen=127.0.0.1:0", "--api=off",
         f"--upstream=127.0.0.1:{upstream_port}",
         "--down.bandwidth=32000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        sys.exit(f"chaos_proxy did not report its port: {line!r}")
    return proc, int(m.group(1))


def stop(proc, name, failures):
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "hung"
    if rc != 0:
        failures.append(f"{name} exit after SIGINT: {rc}")


def send_until_stalled(socks):
    """Sends BLOCK repeatedly on every socket until each one made no
    progress for STALL_S or sent BUDGET. Returns bytes sent per socket and
    the connections the server reset."""
    resets = []
    sent = [0] * len(socks)
    last = [time.monotonic()] * len(socks)
    active = set(range(len(socks)))
    while active:
        _, writable, _ = select.select([], [socks[i] for i in active], [], 0.1)
        now = time.monotonic()
        for i in list(active):
            s = socks[i]
            if s in writable:
                off = sent[i] % len(BLOCK)
                try:
                    n = s.send(BLOCK[off:] + BLOCK[:off])
                except BlockingIOError:
                    n = 0
                except ConnectionError as e:
                    # The server gave up on this client (its write buffer
                    # cap): a failure here, the client did nothing wrong.
                    resets.append(f"client {i}: {e} after {sent[i]} bytes")
                    active.discard(i)
                    continue
                if n > 0:
                    sent[i] += n
                    last[i] = now
            if sent[i] >= BUDGET or now - last[i] > STALL_S:
                active.discard(i)
    return sent, resets


def expected_digest(n):
    h = hashlib.sha256()
    full, rest = divmod(n, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


def read_back(s, n, timeout=60):
    s.setblocking(True)
    s.settimeout(timeout)
    h = hashlib.sha256()
    got = 0
    while got < n:
        chunk = s.recv(min(1 << 20, n - got))
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    return got, h.hexdigest()


def run(name, port, watched, failures):
    """Clients on `port` send without reading; `watched` maps a process name
    to its pid, each of which must keep its RSS within the bound."""
    socks = []
    for _ in range(CLIENTS):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    time.sleep(0.2)  # let the servers finish accepting before the baseline
    before = {p: rss(pid) for p, pid in watched.items()}
    sent, resets = send_until_stalled(socks)
    failures += [f"{name}: {r}" for r in resets]
    bound = (CLIENTS * BOUND_PER_CONN + SLACK) * TSAN_FACTOR
    print(f"{name}: sent per client {sent} (budget {BUDGET})")
    for p, pid in watched.items():
        growth = rss(pid) - before[p]
        print(f"{name}: {p} RSS +{growth} B (bound {bound} B)")
        if growth > bound:
            failures.append(f"{name}: {p} RSS grew by {growth} B > {bound} B")
    for i, n in enumerate(sent):
        if n >= BUDGET:
            failures.append(f"{name}: client {i} was never held back "
                            f"(sent all {n} bytes)")
    for i, s in enumerate(socks):
        if any(r.startswith(f"client {i}:") for r in resets):
            continue
        got, digest = read_back(s, sent[i])
        if got != sent[i] or digest != expected_digest(sent[i]):
            failures.append(f"{name}: client {i}: echoed {got} of {sent[i]} "
                            "bytes or wrong content")
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--proxy", help="chaos_proxy: also run through it")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra server option (to show the test failing: "
                         "--server-arg=--shardwire.write-buffer-cap=0 on a "
                         "server whose reads do not follow its writes)")
    args = ap.parse_args()
    failures = []
    server, port = start_server(args.server, args.server_arg)
    try:
        run("direct", port, {"server": server.pid}, failures)
        if args.proxy:
            proxy, pport = start_proxy(args.proxy, port)
            try:
                run("via chaos_proxy", pport,
                    {"server": server.pid, "chaos_proxy": proxy.pid},
                    failures)
            finally:
                stop(proxy, "chaos_proxy", failures)
    finally:
        stop(server, "server", failures)
    for f in failures:
        print("FAIL:", f)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
