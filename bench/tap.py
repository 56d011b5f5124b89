#!/usr/bin/env python3
"""What `logpipe tap` costs the daemon it taps. Not a timed test: figures.

    cargo build --release && python3 bench/tap.py --lines 1000000 --runs 3

Needs no services: each run is a daemon (`logpipe run`) of the same-work parse
pipeline (file -> grok HTTPD_COMBINEDLOG + date -> null, bench/same-work/
parse_null.toml) on a file holding the first 5,000 lines; once those are out
(and the tap, if any, is connected) the rest of the generated access log is
appended at once, and the run ends when the daemon's
`logpipe_events_out_total` reaches --lines. The daemon's own CPU time (/proc)
and the wall time are taken over that span.

Modes, taking turns run by run so a slow spell of the machine hits all alike:
  none     no tap open
  reader   `logpipe tap --stage output` read to /dev/null as fast as it goes
  stalled  a tap whose reader never reads (its pipe fills, then its queue)
  sampled  `logpipe tap --stage output --sample 0.01` read to /dev/null

Each run also checks the books at the daemon's stop (`balanced=true`, all
events delivered): a tap takes nothing from the pipeline.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# The benchmark's own helpers and paths (LOGPIPE_BENCH_BIN included).
from run import BIN, DATA, ROOT, SAME_WORK, free_port, proc_cpu, proc_hwm_mib  # noqa: E402
from concurrency import http, sample  # noqa: E402

MODES = ["none", "reader", "stalled", "sampled"]
# Lines written before the measured span (see one_run).
WARM = 5000


def get(url):
    return http("GET", url)


def wait(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    sys.exit(f"timed out waiting for {what}")


def one_run(mode, source, lines, work, k):
    tag = f"{mode}-{k}"
    log_file = os.path.join(work, f"access-{tag}.log")
    # A first stretch of lines, so that the file is open (its fingerprint
    # taken) before the measured part: an empty file would wait for the next
    # scan, and the wall time would measure that wait.
    with open(source, "rb") as src, open(log_file, "wb") as dst:
        for _ in range(WARM):
            dst.write(src.readline())
    text = open(os.path.join(SAME_WORK, "parse_null.toml")).read()
    text = text.replace("@INPUT@", log_file).replace('name = "parse_null"', f'name = "tap-{tag}"')
    pipeline = os.path.join(work, f"tap-{tag}.toml")
    with open(pipeline, "w") as f:
        f.write(text)
    state = os.path.join(work, f"state-{tag}")
    os.makedirs(state)
    addr = f"127.0.0.1:{free_port()}"
    daemon_log = os.path.join(work, f"daemon-{tag}.log")
    daemon = subprocess.Popen([BIN, "run", pipeline, "--metrics-address", addr, "--state-dir", state],
                              stdout=subprocess.DEVNULL, stderr=open(daemon_log, "w"))
    base = f"http://{addr}"
    wait("the daemon's /health", lambda: get(f"{base}/health")[0] == 200, 30)
    tap = None
    tap_err = os.path.join(work, f"tap-{tag}.err")
    if mode != "none":
        args = [BIN, "tap", f"tap-{tag}", "--stage", "output", "--metrics-address", addr]
        if mode == "sampled":
            args += ["--sample", "0.01"]
        # A stalled reader: a pipe nobody reads.
        out = subprocess.PIPE if mode == "stalled" else subprocess.DEVNULL
        tap = subprocess.Popen(args, stdout=out, stderr=open(tap_err, "w"))
        # The tap is open once the daemon serves its stream; give it a moment.
        time.sleep(1.0)
        if tap.poll() is not None:
            sys.exit(f"the tap ended early (exit {tap.returncode}): {open(tap_err).read().strip()}")
    labels = [f'pipeline="tap-{tag}"', 'stage="output.null"']
    metrics = f"{base}/metrics"
    wait("the first lines out",
         lambda: (sample(get(metrics)[1], "logpipe_events_out_total", labels) or 0) >= WARM,
         60)
    cpu0, t0 = proc_cpu(daemon.pid), time.monotonic()
    with open(source, "rb") as src, open(log_file, "ab") as dst:
        for _ in range(WARM):
            src.readline()
        shutil.copyfileobj(src, dst, 1 << 20)
    wait("every event out",
         lambda: (sample(get(metrics)[1], "logpipe_events_out_total", labels) or 0) >= lines,
         600)
    wall, cpu = time.monotonic() - t0, proc_cpu(daemon.pid) - cpu0
    skipped = sample(get(metrics)[1], "logpipe_tap_skipped_total", [f'pipeline="tap-{tag}"']) or 0
    rss = proc_hwm_mib(daemon.pid)
    tap_cpu = None
    if tap is not None:
        tap_cpu = proc_cpu(tap.pid)
        tap.kill()
        tap.wait()
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    log = open(daemon_log).read()
    books = [line for line in log.splitlines() if "Books." in line]
    if not books or not all("balanced=true" in line for line in books):
        sys.exit(f"{tag}: the books do not balance; see {daemon_log}")
    measured = lines - WARM
    return {"mode": mode, "wall_s": wall, "cpu_s": cpu, "events_per_s": measured / wall,
            "events_per_cpu_s": measured / cpu, "skipped": skipped, "tap_cpu_s": tap_cpu,
            "peak_rss_mib": rss}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = args.modes.split(",")
    os.makedirs(DATA, exist_ok=True)
    source = os.path.join(DATA, f"access-{args.lines}.log")
    if not os.path.exists(source):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_access_log.py"),
                        source, str(args.lines)], check=True)
    results = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="logpipe-tap-bench-") as work:
        for k in range(args.runs):
            for mode in modes:
                r = one_run(mode, source, args.lines, work, k)
                results[mode].append(r)
                print(f"run {k} {mode:8} {r['events_per_s']:>10,.0f} ev/s {r['events_per_cpu_s']:>10,.0f} ev/CPU-s "
                      f"skipped {r['skipped']:>9,.0f}", file=sys.stderr)
    base = statistics.median(r["events_per_cpu_s"] for r in results.get("none", [])) if "none" in results else None
    print(f"{'mode':8} | {'events/s':>10} | {'events/CPU-s':>12} | {'× none':>6} | {'skipped':>9} | {'tap CPU-s':>9} | RSS MiB")
    for mode in modes:
        rs = results[mode]
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        ratio = f"{med('events_per_cpu_s') / base:.2f}" if base else "-"
        tap_cpu = "-" if mode == "none" else f"{med('tap_cpu_s'):.2f}"
        print(f"{mode:8} | {med('events_per_s'):>10,.0f} | {med('events_per_cpu_s'):>12,.0f} | {ratio:>6} | "
              f"{med('skipped'):>9,.0f} | {tap_cpu:>9} | {med('peak_rss_mib'):.0f}")


if __name__ == "__main__":
    main()
