#!/usr/bin/env python3
"""Many small files: what following them costs in memory and, once they are
all read, in idle CPU.

    cargo build --release && bench/many_files.py [--files 5000] [--lines 12] [--idle 10]

Writes FILES files of LINES access-log-like lines each into a fresh folder,
runs `logpipe run` (file input over one glob, null output) until the null
output counted every line (from /metrics), then leaves it idle for IDLE
seconds. Reports the peak RSS (VmHWM), the CPU seconds spent reading, and the
idle CPU as a percentage of one core. No services needed.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BIN, free_port, proc_cpu, proc_hwm_mib  # noqa: E402  the suite's own helpers


def events_out(port):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0
    total = 0
    for line in text.splitlines():
        m = re.match(r'logpipe_events_out_total\{[^}]*\} (\d+)', line)
        if m:
            total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--lines", type=int, default=12)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    ap.add_argument("--max-open-files", type=int, default=None, help="the input's max_open_files (default: logpipe's)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} missing: cargo build --release")
    work = tempfile.mkdtemp(prefix="logpipe-many-files-")
    try:
        logs = os.path.join(work, "logs")
        os.mkdir(logs)
        line = '127.0.0.1 - - [01/Dec/2026:10:00:00 +0000] "GET /index.html?f={f}&l={l} HTTP/1.1" 200 1043 "-" "bench/1.0"\n'
        for f in range(args.files):
            with open(os.path.join(logs, f"host{f:05}.log"), "w") as out:
                out.write("".join(line.format(f=f, l=l) for l in range(args.lines)))
        port = free_port()
        cap = f"max_open_files = {args.max_open_files}\n" if args.max_open_files else ""
        pipeline = os.path.join(work, "many.toml")
        with open(pipeline, "w") as out:
            out.write(f"""name = "many-files"
[[input]]
type = "file"
paths = ["{logs}/*.log"]
{cap}
[[output]]
type = "null"
""")
        total = args.files * args.lines
        start = time.monotonic()
        p = subprocess.Popen(
            [BIN, "run", pipeline, "--state-dir", os.path.join(work, "state"), "--metrics-address", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "logpipe.log"), "w"))
        deadline = start + 300
        while events_out(port) < total:
            if p.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"logpipe stopped or stalled at {events_out(port)}/{total}; see {work}/logpipe.log")
            time.sleep(0.1)
        read_wall = time.monotonic() - start
        read_cpu = proc_cpu(p.pid)
        time.sleep(5)  # let checkpoints and releases settle
        idle_from = proc_cpu(p.pid)
        time.sleep(args.idle)
        idle_cpu = proc_cpu(p.pid) - idle_from
        hwm = proc_hwm_mib(p.pid)
        p.terminate()
        p.wait(timeout=60)
        result = {
            "files": args.files,
            "lines": total,
            "read_wall_s": round(read_wall, 2),
            "read_cpu_s": round(read_cpu, 2),
            "peak_rss_mib": round(hwm, 1),
            "idle_core_pct": round(100 * idle_cpu / args.idle, 2),
        }
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
