#!/usr/bin/env python3
"""The fleet demo under Ctrl-C: start it, wait (by its output) until every
worker is up and at least one crash was restarted, send SIGINT, and check
that it exits 0 with no worker process left (its own summary, plus a scan
of /proc for processes running the demo binary in --worker mode)."""
import argparse
import os
import signal
import subprocess
import sys
import time


def workers_alive(exe):
    alive = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"--worker" in args and os.path.basename(
                args[0].decode(errors="replace")) == os.path.basename(exe):
            alive.append(int(pid))
    return alive


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet", required=True)
    args = ap.parse_args()
    proc = subprocess.Popen(
        [args.fleet, "--workers=4", "--mean-life-ms=300", "--seed=11",
         "--stop-timeout-ms=500"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    up = restarted = False
    lines = []
    while time.monotonic() < deadline and not (up and restarted):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        up = up or "all workers up" in line
        restarted = restarted or "restarting in" in line
    if not (up and restarted):
        proc.kill()
        print("".join(lines))
        sys.exit("fleet: workers never came up and restarted")
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("fleet: did not stop within 30 s of SIGINT")
    out = "".join(lines) + rest
    if proc.returncode != 0:
        print(out)
        sys.exit(f"fleet: exit code {proc.returncode}")
    if "left running: 0" not in out:
        print(out)
        sys.exit("fleet: summary reports processes left running")
    left = workers_alive(args.fleet)
    if left:
        sys.exit(f"fleet: worker processes still running: {left}")
    print("fleet: stopped cleanly on SIGINT, no worker left")


if __name__ == "__main__":
    main()
