#!/usr/bin/env python3
"""Bulk throughput of the Elasticsearch output's adaptive request concurrency
against fixed limits, on the same machine and run. Not a timed test: figures.

Run it through the test command, which starts the real OpenSearch:

    LOGPIPE_TEST_CMD='python3 bench/concurrency.py --lines 300000 --runs 3' scripts/test.sh

Each run is `logpipe run` of one file (plain lines, ~90 bytes) into a fresh
index of the test OpenSearch (1 shard, no replica, the output's defaults:
1000 events or 5 MiB a request), with `request_concurrency` = "adaptive"
(up to max_in_flight = 8), 1, 2, 4 and 8; the settings take turns, run by
run, so that a slow spell of the machine hits all of them alike. Wall time
is from the start of the process to the last event indexed, as the index's
`_stats/indexing` counts them (real time, no refresh; polled every 50 ms). Medians of --runs. Also printed: the
adaptive limit and RTT average at the end, and the items retried (429s).
Needs the release binary (cargo build --release).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

# The benchmark's own helpers and paths (LOGPIPE_BENCH_BIN included).
from run import BIN, ROOT, free_port  # noqa: E402  (bench/ is on sys.path)

SETTINGS = ["adaptive", "1", "2", "4", "8"]


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def sample(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name) and all(l in line for l in labels):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


def one_run(es, log_file, lines, setting, work, k):
    name = f"arc-{setting}-{k}"
    index = f"bench-{name}-{os.getpid()}"
    status, body = http("PUT", f"{es}/{index}", json.dumps(
        {"settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "30s"}}).encode())
    assert status == 200, body
    concurrency = '"adaptive"' if setting == "adaptive" else setting
    pipeline = os.path.join(work, f"{name}.toml")
    with open(pipeline, "w") as f:
        f.write(f'name = "{name}"\n[[input]]\ntype = "file"\npaths = ["{log_file}"]\n'
                f'[[output]]\ntype = "elasticsearch"\nhosts = "{es}"\nindex = "{index}"\n'
                f'request_concurrency = {concurrency}\n')
    metrics = f"127.0.0.1:{free_port()}"
    state = os.path.join(work, f"{name}-state")
    started = time.monotonic()
    with open(os.path.join(work, f"{name}.log"), "w") as log:
        proc = subprocess.Popen([BIN, "run", pipeline, "--state-dir", state, "--metrics-address", metrics],
                                stdout=subprocess.DEVNULL, stderr=log)
    labels = [f'pipeline="{name}"']
    indexed = 0
    deadline = started + 600
    while indexed < lines:
        assert time.monotonic() < deadline, f"{name}: {indexed} of {lines} indexed after 600 s"
        time.sleep(0.05)
        status, body = http("GET", f"{es}/{index}/_stats/indexing")
        if status == 200:
            indexed = json.loads(body)["_all"]["primaries"]["indexing"]["index_total"]
    wall = time.monotonic() - started
    time.sleep(1.5)  # logpipe's own counters are published every second
    status, text = http("GET", f"http://{metrics}/metrics")
    limit = sample(text, "logpipe_es_concurrency_limit", labels)
    rtt = sample(text, "logpipe_es_rtt_seconds", labels)
    retried = sample(text, "logpipe_es_items_total", labels + ['result="retried"']) or 0
    proc.terminate()
    proc.wait(timeout=60)
    http("POST", f"{es}/{index}/_refresh")
    status, body = http("GET", f"{es}/{index}/_count")
    docs = json.loads(body).get("count") if status == 200 else None
    http("DELETE", f"{es}/{index}")
    assert docs == lines, f"{name}: {docs} documents for {lines} events"
    return {"setting": setting, "wall": wall, "events_per_s": lines / wall, "limit": limit,
            "rtt": rtt, "retried": retried}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    es = os.environ["LOGPIPE_TEST_ES"].rstrip("/")
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} missing: cargo build --release first")
    with tempfile.TemporaryDirectory(prefix="logpipe-arc-bench-") as work:
        log_file = os.path.join(work, "lines.log")
        with open(log_file, "w") as f:
            for i in range(args.lines):
                f.write(f"127.0.0.1 - - request {i:09d} GET /index.html HTTP/1.1 200 {i % 5000} padding padding\n")
        results = {s: [] for s in SETTINGS}
        for k in range(args.runs):
            for setting in SETTINGS:
                r = one_run(es, log_file, args.lines, setting, work, k)
                results[setting].append(r)
                print(f"run {k + 1} {setting:>8}: {r['events_per_s']:8.0f} events/s  "
                      f"({r['wall']:.1f} s; limit {r['limit']}, rtt {r['rtt']}, retried {r['retried']:.0f})",
                      flush=True)
    print(f"\n{args.lines} events, medians of {args.runs} runs:")
    print("| request_concurrency | events/s | vs fixed 2 (the old default) | limit at the end | RTT average |")
    print("|---|---|---|---|---|")
    base = statistics.median(r["events_per_s"] for r in results["2"])
    for s in SETTINGS:
        rs = results[s]
        eps = statistics.median(r["events_per_s"] for r in rs)
        limits = "/".join(f"{r['limit']:.0f}" for r in rs if r["limit"] is not None)
        rtt = statistics.median(r["rtt"] for r in rs if r["rtt"] is not None) * 1000
        print(f"| {s} | {eps:,.0f} | {eps / base:.2f}x | {limits} | {rtt:.0f} ms |")


if __name__ == "__main__":
    main()
