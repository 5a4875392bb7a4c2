#!/usr/bin/env python3
"""The fleet demo under Ctrl-C: start it, wait (by its output) until every
worker is up and at least one crash was restarted, send SIGINT, and check
that it exits 0 with no worker process left (its own summary, plus a scan
of /proc for processes running the demo binary in --worker mode).

Then again with a long --duration-ms: SIGINT must end it promptly (it once
joined a thread sleeping out the whole duration, issue 15), and an option
out of range is refused with an error naming it."""
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
    check_watchdog(args.fleet)
    check_prompt_exit(args.fleet)
    check_refused(args.fleet)


# SIGINT -> exit with --duration-ms far away: stopping 2 workers (SIGTERM,
# they exit at once) takes well under a second; the bound leaves room for a
# loaded CI machine and is far below the 30 s duration.
def check_watchdog(fleet):
    """Workers are notify services under limits: each reports its limits in
    its ready line, and one that hangs is killed by its watchdog (its own
    cause in the crash line) and restarted."""
    proc = subprocess.Popen(
        [fleet, "--workers=3", "--mean-life-ms=200", "--watchdog-ms=300",
         "--seed=5", "--stop-timeout-ms=500", "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    lines = []
    limits_seen = hung = killed = restarted = False
    while time.monotonic() < deadline and not restarted:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        limits_seen = limits_seen or "nofile 1024, nice 5)" in line
        hung = hung or "crashing by hanging" in line
        if hung and "crashed: shardwire: watchdog_timeout" in line and \
                "no WATCHDOG=1 for 300 ms" in line:
            killed = line.split()[1]  # "[fleet] worker-N crashed: ..."
        if killed and f"{killed} restarting in" in line:
            restarted = True
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("fleet --watchdog-ms: did not stop within 30 s of SIGINT")
    out = "".join(lines) + rest
    if not (limits_seen and killed and restarted):
        print(out[-6000:])
        sys.exit(f"fleet --watchdog-ms: limits in ready line {limits_seen}, "
                 f"hang killed by the watchdog {bool(killed)}, "
                 f"restarted {restarted}")
    if proc.returncode != 0 or "left running: 0" not in out:
        print(out[-6000:])
        sys.exit(f"fleet --watchdog-ms: exit code {proc.returncode} or "
                 "workers left running")
    print(f"fleet --watchdog-ms=300: {killed} hung, was killed by its "
          "watchdog and restarted")


PROMPT_EXIT_S = 2.0


def check_prompt_exit(fleet):
    proc = subprocess.Popen(
        [fleet, "--workers=2", "--mean-life-ms=60000", "--seed=3",
         "--duration-ms=30000", "--stop-timeout-ms=500"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "all workers up" in line:
            break
    if not lines or "all workers up" not in lines[-1]:
        proc.kill()
        print("".join(lines))
        sys.exit("fleet --duration-ms: workers never came up")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("fleet --duration-ms: did not stop within 30 s of SIGINT")
    took = time.monotonic() - t0
    if proc.returncode != 0:
        print("".join(lines) + rest)
        sys.exit(f"fleet --duration-ms: exit code {proc.returncode}")
    if took > PROMPT_EXIT_S:
        sys.exit(f"fleet --duration-ms=30000: exited {took:.2f} s after "
                 f"SIGINT (bound {PROMPT_EXIT_S} s)")
    print(f"fleet --duration-ms=30000: exited {took:.2f} s after SIGINT")


def check_refused(fleet):
    for arg, name in [("--workers=0", "--workers"),
                      ("--watchdog-ms=100", "--watchdog-ms"),
                      ("--mean-life-ms=0", "--mean-life-ms"),
                      ("--duration-ms=18446744073709551615", "--duration-ms")]:
        r = subprocess.run([fleet, arg], capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 1 or not r.stderr.startswith(f"error: {name}:") \
                or r.stdout:
            sys.exit(f"fleet {arg}: expected exit 1 and 'error: {name}:' "
                     f"before any output, got {r.returncode}, "
                     f"stdout {r.stdout!r}, stderr {r.stderr!r}")
    print("fleet: out-of-range options refused")


if __name__ == "__main__":
    main()
