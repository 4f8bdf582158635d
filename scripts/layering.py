#!/usr/bin/env python3
"""The layering check (HOUSE_STYLE rule 11, README "Architecture"): within each crate's `src/`
given on the command line, no module uses a module that uses it, directly or through others.

    python3 scripts/layering.py router/src shared/src local/src backend/src tests/src testkit/src

A module is a file (`foo.rs`, `foo/mod.rs`, `lib.rs`, `main.rs`). It uses another when its code
names a path into it: `crate::a::b…`, `super::…`, `self::…` (in `use` items or inline; a
`{…}` group counts each of its paths), or `use child::…` (edition-2018 paths relative to the
module, re-exports included). A path is resolved to the longest prefix that is a module's file.
`mod child;` declarations and visibility (`pub(crate)`, `pub(super)`) are not uses. Prints each
cycle and exits 1 when there is one; prints "no import cycles" otherwise. Comments and string
literals are skipped."""

import re
import sys
from pathlib import Path

# `crate`/`super`/`self` followed by at least one segment, or by a group.
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::(\{|[A-Za-z_])")
CHILD_USE = re.compile(r"\buse\s+([A-Za-z_][A-Za-z0-9_]*)::")


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    """The code without comments, string and char literals (raw strings included)."""
    text = re.sub(r'r(#*)".*?"\1', '""', text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
    text = re.sub(r"'(?:\\.|[^'\\])'", "''", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def group(text: str, start: int) -> list:
    """The first segment of each path in the `{…}` group opening at `start` (after the `{`)."""
    depth, out, current, i = 1, [], "", start
    while i < len(text) and depth:
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 1:
            out.append(current)
            current = ""
        elif depth == 1:
            current += c
        i += 1
    out.append(current)
    heads = [p.strip().split("::")[0].split(" ")[0] for p in out]
    return [h for h in heads if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", h)]


def cycles_in(root: str) -> list:
    src = Path(root)
    files = {module_of(src, f): f for f in sorted(src.rglob("*.rs"))}
    edges = {m: set() for m in files}

    # Names a module re-exports from a child (`pub use child::{A, b::C as D};`): a path naming
    # them resolves to the child, where they are defined.
    reexports = {m: {} for m in files}
    texts = {}
    for module, file in files.items():
        texts[module] = strip(file.read_text())
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+(?:self::)?([A-Za-z_][A-Za-z0-9_:]*?)::(\{[^;]*\}|[A-Za-z_][A-Za-z0-9_]*)\s*;", texts[module]):
            prefix = tuple(p for p in m.group(1).split("::") if p)
            items = m.group(2).strip("{}").split(",")
            for item in items:
                item = item.strip()
                if not item:
                    continue
                name = item.split(" as ")[-1].strip().split("::")[-1]
                path = prefix + tuple(item.split(" as ")[0].strip().split("::")[:-1])
                reexports[module][name] = module + path

    def resolve(module, path):
        """Adds the edge `module` → the module `path` names: its longest prefix that is a file,
        or, when the next segment is a name that module re-exports, the module it comes from."""
        path = tuple(path)
        target = path
        while target and target not in files:
            target = target[:-1]
        rest = path[len(target):]
        if rest and rest[0] in reexports.get(target, {}):
            source = reexports[target][rest[0]]
            while source and source not in files:
                source = source[:-1]
            if source in files:
                target = source
        if target in files and target != module:
            edges[module].add(target)

    for module, file in files.items():
        text = texts[module]
        text = "\n".join(
            l for l in text.splitlines()
            if not re.match(r"\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*;", l)
        )
        for m in CHILD_USE.finditer(text):
            if module + (m.group(1),) in files:
                edges[module].add(module + (m.group(1),))
        for m in PATH.finditer(text):
            kind, rest, after = m.group(1), m.group(2), m.group(3)
            base = {"crate": (), "super": module[:-1], "self": module}[kind]
            segments = [s for s in rest.split("::") if s]
            while segments and segments[0] == "super":
                base, segments = base[:-1], segments[1:]
            if after == "{":
                for head in group(text, m.end()):
                    resolve(module, tuple(base) + tuple(segments) + (() if head == "self" else (head,)))
            else:
                # The segment after the last `::` begins at `after`.
                tail = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[m.end() - 1:]).group(0)
                resolve(module, tuple(base) + tuple(segments) + (tail,))

    # Strongly connected components (Tarjan), iteratively.
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in files:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(str(files[c]) for c in component))
    return found


def main(roots: list) -> int:
    count = 0
    for root in roots:
        for component in cycles_in(root):
            count += 1
            print(f"cycle of {len(component)} files in {root}:")
            for name in component:
                print(f"  {name}")
    if count:
        print(f"{count} import cycle(s): move the shared items into a module below both")
        return 1
    print("no import cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["router/src"]))
