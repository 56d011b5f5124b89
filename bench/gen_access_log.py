#!/usr/bin/env python3
"""Writes a reproducible Apache combined-format access log for benchmarks.

    bench/gen_access_log.py OUT LINES [--seed N] [--start 2026-11-25T00:00:00+00:00]

The same seed and line count always give the same bytes. Lines look like a
busy site's: a few thousand client addresses (IPv4 and some IPv6), common
paths with query strings, real browser and bot user agents, mostly 200s with
304/404/301/500 mixed in, sizes from tiny to large, and seconds that advance
slowly so timestamps repeat as in real traffic.
"""
import argparse
import datetime as dt
import random

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "-",
]
PATHS = [
    "/", "/index.html", "/favicon.ico", "/robots.txt", "/css/site.css", "/js/app.js",
    "/images/logo.png", "/images/hero.jpg", "/blog/", "/blog/2026/11/logpipe-released.html",
    "/api/v1/items", "/api/v1/items/{n}", "/api/v1/search?q={q}&page={p}", "/docs/install.html",
    "/downloads/logpipe-{n}.tar.gz", "/wp-login.php", "/.env", "/feed.xml",
]
WORDS = ["apache", "logs", "kafka", "elastic", "rust", "pipeline", "httpd", "error", "grok", "tail"]
REFERRERS = ["-", "-", "-", "https://www.example.org/", "https://search.example.com/?q=logpipe", "https://news.example.net/item?id=42"]
STATUS = [200] * 80 + [304] * 8 + [404] * 6 + [301] * 3 + [206, 403, 500]
METHODS = ["GET"] * 90 + ["POST"] * 7 + ["HEAD"] * 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("lines", type=int)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--start", default="2026-11-25T00:00:00+00:00")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    clients = [f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}" for _ in range(3000)]
    clients += [f"2001:db8:{rnd.randint(0, 65535):x}::{rnd.randint(1, 65535):x}" for _ in range(300)]
    t = dt.datetime.fromisoformat(args.start)
    with open(args.out, "w", buffering=1 << 20) as f:
        for _ in range(args.lines):
            if rnd.random() < 0.02:
                t += dt.timedelta(seconds=1)
            path = rnd.choice(PATHS).format(n=rnd.randint(1, 99999), q=rnd.choice(WORDS), p=rnd.randint(1, 20))
            status = rnd.choice(STATUS)
            size = "-" if status == 304 else str(int(rnd.lognormvariate(8, 1.5)))
            user = "-" if rnd.random() < 0.97 else rnd.choice(["alice", "bob", "deploy"])
            f.write(
                f'{rnd.choice(clients)} - {user} [{t.strftime("%d/%b/%Y:%H:%M:%S %z")}] '
                f'"{rnd.choice(METHODS)} {path} HTTP/1.1" {status} {size} '
                f'"{rnd.choice(REFERRERS)}" "{rnd.choice(AGENTS)}"\n'
            )


if __name__ == "__main__":
    main()
