#!/usr/bin/env python3
"""Writes the licences of everything linked into the fleet binary into one
file (the packages' THIRD-PARTY-LICENSES): every crate of the target's
normal dependency graph (build scripts and dev-dependencies are not linked
in), and the C libraries those crates vendor: librdkafka (and what it
bundles), OpenSSL, zlib, zstd, curl, mimalloc.

    scripts/licenses.py --target x86_64-unknown-linux-musl --out FILE

Exits 1 naming the crate when a dependency has neither a licence file nor a
licence expression, so a new dependency cannot ship without one.
"""
import argparse
import json
import pathlib
import subprocess
import sys

NAMES = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "UNLICENSE")
# Folders inside -sys crates holding the vendored C sources' own licences.
VENDORED = ("librdkafka", "openssl", "src/zlib", "src/zlib-ng", "zstd", "curl",
            "c_src/mimalloc/v2", "c_src/mimalloc/v3")
# Build-dependencies whose output is linked in: the C sources they build.
LINKED_BUILD_DEPS = {"openssl-src"}


def licence_files(folder: pathlib.Path):
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.upper().startswith(NAMES))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--features", default="")
    args = ap.parse_args()
    cmd = ["cargo", "metadata", "--format-version", "1", "--locked",
           "--filter-platform", args.target]
    if args.features:
        cmd += ["--features", args.features]
    meta = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]

    # The crates linked into the binary: reachable from the root through
    # normal dependencies only.
    linked, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in linked:
            continue
        linked.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]) or \
                    packages[dep["pkg"]]["name"] in LINKED_BUILD_DEPS:
                todo.append(dep["pkg"])
    linked.discard(root)

    out, missing = [], []
    out.append("Third-party software linked into logpipe, and its licences.\n")
    for pid in sorted(linked, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        pkg = packages[pid]
        folder = pathlib.Path(pkg["manifest_path"]).parent
        files = licence_files(folder)
        header = f"{pkg['name']} {pkg['version']} — {pkg.get('license') or 'see below'}"
        out.append("=" * 78 + f"\n{header}\n" + (pkg.get("repository") or "") + "\n")
        if not files and not pkg.get("license"):
            missing.append(f"{pkg['name']} {pkg['version']} ({folder})")
        for f in files:
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')}\n")
        for sub in VENDORED:
            for f in licence_files(folder / sub):
                out.append(f"--- vendored C sources: {sub}/{f.name}\n{f.read_text(errors='replace')}\n")
    if missing:
        print("licenses.py: no licence for: " + ", ".join(missing), file=sys.stderr)
        return 1
    pathlib.Path(args.out).write_text("\n".join(out))
    print(f"licenses.py: {len(linked)} crates -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
