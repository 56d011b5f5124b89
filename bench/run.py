#!/usr/bin/env python3
"""logpipe's throughput and latency benchmark suite.

Run it through the bench command (README), which starts the test services:

    bench/run.sh [--lines 2000000] [--runs 3] [--phases parse,ship,index,latency]

Profiles: `--profile preset` (default) runs the phases below with the shipped httpd access
preset and logpipe's own defaults (lz4 + idempotence on the ship half); `--profile same-work`
runs the four pipelines of bench/same-work/ (read, parse, ship, index: the same work as the
peers of ../shared/bench/PEERS.md do: grok HTTPD_COMBINEDLOG + date, compression and
idempotence off, the index topic preloaded with raw lines), so their figures compare by ratio.

Phases, each on the same generated combined-format access log (bench/gen_access_log.py):
  parse    file -> httpd preset filters -> null output        (one process, no services)
  ship     file -> Kafka (the test command's broker), role ship
  index    Kafka -> httpd preset filters -> bulk to a null bulk endpoint (examples/null_bulk.rs), role index
  latency  a writer appends lines at a steady rate; file -> Kafka -> filters -> the real test
           Elasticsearch (through a recording proxy); p50/p99 from line written to bulk item acknowledged

Figures per phase: events/s (wall), events per CPU-second of the logpipe process (user+system,
from wait4 or /proc), CPU seconds per million events, peak RSS (ru_maxrss / VmHWM).
Each throughput phase runs --runs times; the medians are reported.
Prints a table and writes bench/results.json.
"""
import argparse
import http.server
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "bench", ".data")
# LOGPIPE_BENCH_BIN runs another build (an older commit's, for a before/after
# comparison on the same machine and run) in place of this tree's.
BIN = os.environ.get("LOGPIPE_BENCH_BIN") or os.path.join(ROOT, "target", "release", "logpipe")
NULL_BULK = os.path.join(ROOT, "target", "release", "examples", "null_bulk")
PRODUCE_LINES = os.path.join(ROOT, "target", "release", "examples", "produce_lines")
SAME_WORK = os.path.join(ROOT, "bench", "same-work")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def preset_filters(name):
    """The [[filter]] tables of a shipped pipeline, verbatim."""
    text = open(os.path.join(ROOT, "pipelines", name)).read()
    start = text.find("[[filter]]")
    if start < 0:
        return ""
    end = text.find("[[output]]", start)
    return text[start:end if end >= 0 else len(text)]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_to_exit(args, log):
    """Runs logpipe until it exits by itself; returns wall, cpu, peak RSS."""
    start = time.monotonic()
    p = subprocess.Popen([BIN] + args, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    if status != 0:
        sys.exit(f"logpipe failed ({status}); see {log}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def figures(name, events, wall, cpu, rss):
    return {
        "phase": name,
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "events_per_cpu_s": round(events / cpu) if cpu else None,
        "cpu_s_per_million": round(cpu / events * 1e6, 3),
        "peak_rss_mib": round(rss, 1),
    }


def phase_parse(log_file, lines, work):
    pipeline = write(os.path.join(work, "parse.toml"), f"""name = "bench-parse"
[[input]]
type = "file"
paths = ["{log_file}"]
exit_after_eof = true
checkpoint = false
tags = ["httpd_access"]
{preset_filters("httpd-access.toml")}
[[output]]
type = "null"
""")
    wall, cpu, rss = run_to_exit(["run", pipeline, "--metrics-address", "off", "--state-dir", work], os.path.join(work, "parse.log"))
    return figures("parse", lines, wall, cpu, rss)


def phase_ship(log_file, lines, work, kafka, topic):
    pipeline = write(os.path.join(work, f"ship-{topic}.toml"), f"""name = "bench-ship"
[[input]]
type = "file"
paths = ["{log_file}"]
exit_after_eof = true
checkpoint = false
tags = ["httpd_access"]
[kafka]
brokers = "{kafka}"
topic = "{topic}"
partitions = 3
""")
    subprocess.run([BIN, "topics", "ensure", pipeline], check=True, stdout=subprocess.DEVNULL)
    wall, cpu, rss = run_to_exit(["run", pipeline, "--role", "ship", "--metrics-address", "off", "--state-dir", work], os.path.join(work, "ship.log"))
    return figures("ship", lines, wall, cpu, rss)


def null_stats(url):
    with urllib.request.urlopen(url + "/_stats/null", timeout=5) as r:
        return json.load(r)["items"]


def phase_index(lines, work, kafka, topic, null_url, run):
    pipeline = write(os.path.join(work, f"index-{run}.toml"), f"""name = "bench-index-{run}"
[kafka]
brokers = "{kafka}"
topic = "{topic}"
group_id = "bench-index-{topic}-{run}"
session_timeout = "6s"
{preset_filters("httpd-access.toml")}
[[output]]
type = "elasticsearch"
hosts = "{null_url}"
index = "httpd_access-%{{+YYYY.MM.dd}}"
""")
    before = null_stats(null_url)
    p = subprocess.Popen([BIN, "run", pipeline, "--role", "index", "--metrics-address", "off", "--state-dir", work],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"index-{run}.log"), "w"))
    first = None
    deadline = time.monotonic() + 1800
    while True:
        done = null_stats(null_url) - before
        if done > 0 and first is None:
            first = time.monotonic()
        if done >= lines:
            break
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"index phase stopped at {done}/{lines}")
        time.sleep(0.05)
    wall = time.monotonic() - first
    cpu, rss = proc_cpu(p.pid), proc_hwm_mib(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    return figures("index", lines, wall, cpu, rss)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Forwards to the real Elasticsearch and records, per bulk item, when
    Elasticsearch acknowledged it."""
    upstream = ""
    latencies = []
    seen = set()
    lock = threading.Lock()
    pattern = re.compile(rb"/lat/(\d+)")

    def log_message(self, *args):
        pass

    def forward(self, method):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        req = urllib.request.Request(self.upstream + self.path, data=body, method=method)
        for k in ("content-type", "content-encoding"):
            if self.headers.get(k):
                req.add_header(k, self.headers[k])
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        now = time.time_ns()
        if body and "_bulk" in self.path and status == 200:
            with self.lock:
                # A document names its URL in several fields: count each line once.
                for sent in set(self.pattern.findall(body)):
                    if sent not in self.seen:
                        self.seen.add(sent)
                        self.latencies.append((now - int(sent)) / 1e6)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.forward("GET")

    def do_POST(self):
        self.forward("POST")

    def do_PUT(self):
        self.forward("PUT")


def phase_latency(work, kafka, es, rate, seconds):
    Recorder.upstream = es.rstrip("/")
    Recorder.latencies = []
    Recorder.seen = set()
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_file = os.path.join(work, "latency_access_log")
    open(log_file, "w").close()
    topic = f"bench-latency-{os.getpid()}"
    pipeline = write(os.path.join(work, "latency.toml"), f"""name = "bench-latency"
[[input]]
type = "file"
paths = ["{log_file}"]
checkpoint = false
poll_interval = "50ms"
tags = ["httpd_access"]
[kafka]
brokers = "{kafka}"
topic = "{topic}"
session_timeout = "6s"
ensure_topic = true
{preset_filters("httpd-access.toml")}
[[output]]
type = "elasticsearch"
hosts = "http://127.0.0.1:{port}"
index = "bench-latency-%{{+YYYY.MM.dd}}"
batch_wait = "100ms"
""")
    p = subprocess.Popen([BIN, "run", pipeline, "--metrics-address", "off", "--state-dir", work],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "latency.log"), "w"))
    time.sleep(8)  # group join, so that the first lines do not measure it
    total = int(rate * seconds)
    with open(log_file, "a", buffering=1) as f:
        start = time.monotonic()
        for i in range(total):
            target = start + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            f.write(f'192.0.2.1 - - [{now}] "GET /lat/{time.time_ns()} HTTP/1.1" 200 1 "-" "bench"\n')
    deadline = time.monotonic() + 60
    while len(Recorder.latencies) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    server.shutdown()
    lat = sorted(Recorder.latencies)
    if not lat:
        sys.exit("latency phase: nothing indexed")
    q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))], 1)
    return {"phase": "latency", "events": len(lat), "written": total, "rate_per_s": rate,
            "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": round(lat[-1], 1)}


def same_work_pipeline(name, work, tag, **fill):
    """A bench/same-work pipeline with its @PLACEHOLDERS@ filled in; a file input
    reads to its end and exits (no checkpoint), as a batch run must."""
    text = open(os.path.join(SAME_WORK, f"{name}.toml")).read()
    for key, value in fill.items():
        text = text.replace(f"@{key}@", str(value))
    text = text.replace('start_position = "beginning"',
                        'start_position = "beginning"\nexit_after_eof = true\ncheckpoint = false')
    return write(os.path.join(work, f"sw-{name}-{tag}.toml"), text)


def fresh_state(work, tag):
    state = os.path.join(work, f"state-{tag}")
    os.makedirs(state)
    return state


def same_work_file_phase(name, log_file, lines, work, run, **fill):
    pipeline = same_work_pipeline(name, work, run, INPUT=log_file, **fill)
    role = ["--role", "ship"] if name == "ship" else []
    wall, cpu, rss = run_to_exit(["run", pipeline, *role, "--metrics-address", "off",
                                  "--state-dir", fresh_state(work, f"{name}-{run}")],
                                 os.path.join(work, f"sw-{name}-{run}.log"))
    return figures(name.replace("_null", ""), lines, wall, cpu, rss)


def same_work_index(log_file, lines, work, kafka, run, null_url):
    topic = f"bench-sw-{os.getpid()}-{run}"
    out = subprocess.run([PRODUCE_LINES, kafka, topic, log_file], check=True, capture_output=True, text=True)
    if int(out.stdout.strip()) != lines:
        sys.exit(f"preloading {topic}: {out.stdout.strip()} of {lines} records")
    port = null_url.rsplit(":", 1)[1]
    pipeline = same_work_pipeline("index", work, run, BROKER=kafka, TOPIC=topic,
                                  GROUP=f"{topic}-group", ES_PORT=port)
    before = null_stats(null_url)
    p = subprocess.Popen([BIN, "run", pipeline, "--role", "index", "--metrics-address", "off",
                          "--state-dir", fresh_state(work, f"index-{run}")],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"sw-index-{run}.log"), "w"))
    start = time.monotonic()
    deadline = start + 1800
    while null_stats(null_url) - before < lines:
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"same-work index stopped at {null_stats(null_url) - before}/{lines}")
        time.sleep(0.05)
    wall = time.monotonic() - start
    cpu, rss = proc_cpu(p.pid), proc_hwm_mib(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    return figures("index", lines, wall, cpu, rss)


def start_null_bulk():
    port = free_port()
    null = subprocess.Popen([NULL_BULK, f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    null_url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            null_stats(null_url)
            break
        except OSError:
            time.sleep(0.05)
    return null, null_url


def run_same_work(args, phases, log_file, work, kafka):
    """The four same-work phases, each --runs times, interleaved run by run."""
    runs = {p: [] for p in phases}
    null, null_url = start_null_bulk() if "index" in phases else (None, None)
    try:
        for run in range(args.runs):
            for phase in phases:
                if phase in ("read", "parse"):
                    runs[phase].append(same_work_file_phase(f"{phase}_null", log_file, args.lines, work, run))
                elif phase == "ship":
                    topic = f"bench-sw-ship-{os.getpid()}-{run}"
                    runs[phase].append(same_work_file_phase("ship", log_file, args.lines, work, run,
                                                            BROKER=kafka, TOPIC=topic))
                elif phase == "index":
                    runs[phase].append(same_work_index(log_file, args.lines, work, kafka, run, null_url))
    finally:
        if null:
            null.terminate()
    return [median_of(runs[p]) for p in phases]


def median_of(results):
    keys = ("wall_s", "events_per_s", "events_per_cpu_s", "cpu_s_per_million", "peak_rss_mib")
    out = dict(results[0])
    for k in keys:
        out[k] = statistics.median(r[k] for r in results)
    out["runs"] = len(results)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", choices=("preset", "same-work"), default="preset")
    ap.add_argument("--phases", default=None,
                    help="default: parse,ship,index,latency (preset); read,parse,ship,index (same-work)")
    ap.add_argument("--rate", type=float, default=1000.0, help="latency phase: lines per second")
    ap.add_argument("--seconds", type=float, default=20.0, help="latency phase: how long to write")
    ap.add_argument("--out", default=None,
                    help="default bench/results.json (preset), bench/results-same-work.json (same-work)")
    args = ap.parse_args()
    if args.out is None:
        name = "results-same-work.json" if args.profile == "same-work" else "results.json"
        args.out = os.path.join(ROOT, "bench", name)
    default_phases = "read,parse,ship,index" if args.profile == "same-work" else "parse,ship,index,latency"
    phases = (args.phases or default_phases).split(",")
    kafka = os.environ.get("LOGPIPE_TEST_KAFKA")
    es = os.environ.get("LOGPIPE_TEST_ES")
    if any(p in phases for p in ("ship", "index", "latency")) and not kafka:
        sys.exit("run through bench/run.sh (it starts Kafka and Elasticsearch)")

    subprocess.run(["cargo", "build", "--release", "--bin", "logpipe", "--example", "null_bulk",
                    "--example", "produce_lines"], cwd=ROOT, check=True)
    os.makedirs(DATA, exist_ok=True)
    log_file = os.path.join(DATA, f"access-{args.lines}.log")
    if not os.path.exists(log_file):
        print(f"generating {args.lines} lines into {log_file} ...", flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_access_log.py"), log_file, str(args.lines)], check=True)
    size_mb = os.path.getsize(log_file) / 1e6
    work = os.path.join(DATA, f"run-{os.getpid()}")
    os.makedirs(work)

    results = []
    null = None
    if args.profile == "same-work":
        results = run_same_work(args, phases, log_file, work, kafka)
        phases = []
    try:
        if "parse" in phases:
            results.append(median_of([phase_parse(log_file, args.lines, work) for _ in range(args.runs)]))
        topics = []
        if "ship" in phases or "index" in phases:
            for run in range(args.runs):
                topics.append(f"bench-{os.getpid()}-{run}")
            ship = [phase_ship(log_file, args.lines, work, kafka, t) for t in topics]
            if "ship" in phases:
                results.append(median_of(ship))
        if "index" in phases:
            null, null_url = start_null_bulk()
            results.append(median_of([phase_index(args.lines, work, kafka, t, null_url, i) for i, t in enumerate(topics)]))
        if "latency" in phases:
            results.append(phase_latency(work, kafka, es, args.rate, args.seconds))
    finally:
        if null:
            null.terminate()

    print(f"\nprofile {args.profile}; input: {args.lines} combined-format lines, {size_mb:.0f} MB; {os.cpu_count()} cores; medians of {args.runs} run(s)\n")
    print(f"{'phase':<8} {'events/s':>12} {'events/CPU-s':>14} {'CPU-s/M ev':>11} {'peak RSS MiB':>13}")
    for r in results:
        if r["phase"] == "latency":
            continue
        print(f"{r['phase']:<8} {r['events_per_s']:>12,} {r['events_per_cpu_s']:>14,} {r['cpu_s_per_million']:>11} {r['peak_rss_mib']:>13}")
    for r in results:
        if r["phase"] == "latency":
            print(f"\nlatency at {r['rate_per_s']:.0f} lines/s: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms ({r['events']} of {r['written']} lines)")
    summary = {"profile": args.profile, "lines": args.lines, "bytes": os.path.getsize(log_file), "cores": os.cpu_count(), "runs": args.runs,
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
