#!/usr/bin/env python3
"""The demo servers under systemd's Type=notify with WatchdogSec=
(runtime/systemd_notify.hpp): a socket bound here stands in for systemd.

For tcp_echo_server and chaos_proxy: READY=1 with a
STATUS line once the program serves, WATCHDOG=1 again and again from the
runtime's shard health check (WATCHDOG_USEC=200000: every 100 ms), and
STOPPING=1 after SIGTERM, then exit 0. Waits are bounded reads of the
socket; no fixed sleeps.

Usage: run_systemd_notify.py --echo-server BIN --chaos-proxy BIN
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'support'))
from harness import check, failures, free_port  # noqa: E402


def run_one(name, argv):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = f"shardwire-test-notify/{os.getpid()}/{name}"
    sock.bind("\0" + addr)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET="@" + addr, WATCHDOG_USEC="200000")
    print(f"  $ NOTIFY_SOCKET=@{addr} WATCHDOG_USEC=200000 {' '.join(argv)}",
          flush=True)
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    got = []
    ready = None
    pings = 0
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (ready is None or pings < 3):
            msg = sock.recv(4096).decode()
            got.append(msg)
            if msg.startswith("READY=1"):
                ready = msg
            elif msg == "WATCHDOG=1" and ready is not None:
                pings += 1
    except socket.timeout:
        pass
    check(ready is not None and "\nSTATUS=" in ready,
          f"{name}: READY=1 with a STATUS line ({ready!r})")
    check(pings >= 3, f"{name}: WATCHDOG=1 keeps coming once ready "
                      f"({pings} seen)")
    proc.send_signal(signal.SIGTERM)
    stopping = False
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not stopping:
            stopping = sock.recv(4096).decode() == "STOPPING=1"
    except socket.timeout:
        pass
    check(stopping, f"{name}: STOPPING=1 after SIGTERM")
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        check(False, f"{name}: exits within 15 s of SIGTERM")
        return
    check(proc.returncode == 0,
          f"{name}: exit code 0 (got {proc.returncode}; {err[-300:]!r})")
    sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo-server", required=True)
    ap.add_argument("--chaos-proxy", required=True)
    args = ap.parse_args()
    run_one("tcp_echo_server",
            [args.echo_server, "--host=127.0.0.1", "--port=0", "--quiet"])
    upstream = free_port()
    run_one("chaos_proxy",
            [args.chaos_proxy, "--listen=127.0.0.1:0", "--api=127.0.0.1:0",
             f"--upstream=127.0.0.1:{upstream}"])
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")


if __name__ == "__main__":
    main()
