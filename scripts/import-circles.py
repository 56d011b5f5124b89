#!/usr/bin/env python3
"""Fails when files of the crate import each other in a circle, or a layer
imports one it must not (see RULES).

    scripts/import-circles.py [SRC]     (default: src)

A file imports another when it names a path into it: `crate::a::b`,
`super::x`, `self::x` (in `use` lines and in code). Paths resolve to the
file owning the longest prefix of the module path. A module naming its own
submodules (`mod x;` then `x::item`) is the module tree, not an import; test
modules (from `#[cfg(test)]` on) are left out. Prints each circle (a strongly
connected set of files) and a last line `import circles: N`; exits 1 when
N > 0. The layering it keeps is in docs/ARCHITECTURE.md.
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "src"


def module_files(src):
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            files[tuple(parts)] = rel
    return files


FILES = module_files(SRC)


def owner(path):
    for k in range(len(path), -1, -1):
        if tuple(path[:k]) in FILES:
            return FILES[tuple(path[:k])]
    return None


PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)


def imports(module, text):
    text = text.split("#[cfg(test)]", 1)[0]
    text = re.sub(r"//[^\n]*", "", text)
    here = list(module)
    # A file's own module is `module`; its `super` is one up. A mod.rs's
    # module is its folder, so `super` from it is the folder's parent too.
    found = set()

    def add(root, rest):
        base = {"crate": [], "super": here[:-1], "self": here}[root]
        target = owner(base + [p for p in rest if p])
        if target:
            found.add(target)

    for m in GROUP.finditer(text):
        prefix = [p for p in m.group(2).split("::") if p]
        for item in re.split(r"[,\s]+", m.group(3)):
            item = item.strip("{} ")
            if item and item != "self":
                add(m.group(1), prefix + [p for p in item.split("::") if p and p != "*"])
            elif item == "self":
                add(m.group(1), prefix)
    for m in PATH.finditer(text):
        add(m.group(1), [p for p in m.group(2).split("::") if p])
    return found


graph = {}
for module, rel in FILES.items():
    with open(os.path.join(SRC, rel), encoding="utf-8") as f:
        text = f.read()
    deps = imports(module, text)
    # Children of this module are its tree, not imports.
    graph[rel] = {
        d for d in deps
        if d != rel and not any(FILES.get(m) == d and m[: len(module)] == module and len(m) > len(module)
                                for m in FILES)
    }

# Tarjan's strongly connected components.
index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            circles.append(sorted(component))


sys.setrecursionlimit(10000)
for v in sorted(graph):
    if v not in index:
        visit(v)
for c in sorted(circles):
    print(f"circle of {len(c)}: {', '.join(c)}")
print(f"import circles: {len(circles)}")

# The layers of docs/ARCHITECTURE.md: (files, what they must not import).
STAGES = ("input/", "filter/", "output/", "kafka/")
CORE = ("event/", "ack.rs", "accounting.rs", "condition.rs", "template.rs", "shutdown.rs", "retry.rs",
        "telemetry.rs", "host.rs", "error.rs", "dead_letter.rs", "config/", "monitor/")
ABOVE = ("pipeline/", "topology/", "app/", "import/", "cli.rs")
RULES = [
    (("input/",), ("output/", "filter/")),
    (("output/",), ("input/", "filter/")),
    (("filter/",), ("input/", "output/", "kafka/")),
    (CORE, STAGES + ABOVE),
    (STAGES, ABOVE),
]
broken = []
for rel, deps in sorted(graph.items()):
    for layer, banned in RULES:
        if rel.startswith(layer):
            broken += [f"{rel} imports {d}" for d in sorted(deps) if d.startswith(banned)]
for b in broken:
    print(f"layer rule broken: {b}")
print(f"layer rules broken: {len(broken)}")
sys.exit(1 if circles or broken else 0)
