#!/usr/bin/env python3
"""Import cycles between the source files of src/ (a file is one module).

An edge A -> B is a path in A (a `use`, or a qualified path in code) that names module B
or an item in it: `crate::x::y`, `super::x`, `self::x`. A parent's `mod x;` declaration is
not an edge (it is the tree, not a dependency); its `pub use x::…` re-export is. Prints
each cycle (strongly connected group of files) and exits 1 if there is any.

Usage: python3 tools/module_cycles.py [SRC_DIR]   (default: src)
"""

import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)
COMMENT = re.compile(r"//[^\n]*")


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def paths_in(text: str):
    """Every (root, segments) path the text names, `use` groups expanded one level."""
    text = COMMENT.sub("", text)
    for root, prefix, group in USE_GROUP.findall(text):
        base = [s for s in prefix.split("::") if s]
        for item in group.split(","):
            item = item.strip().split(" as ")[0].strip()
            segments = base + [s for s in item.split("::") if s and s not in ("{", "}")]
            yield root, segments
    for root, rest in PATH.findall(text):
        yield root, [s for s in rest.split("::") if s]


def resolve(here: tuple[str, ...], is_dir_module: bool, root: str, segments, modules):
    """The longest module that the path names, or None."""
    if root == "crate":
        base: list[str] = []
    else:
        # Inside a file module `a/b.rs`, `self` is a::b and `super` is a; in `a/mod.rs`, the
        # same holds with the directory as the module.
        base = list(here)
        if root == "super":
            base = base[:-1]
    candidate = base + list(segments)
    while candidate:
        if tuple(candidate) in modules:
            return tuple(candidate)
        candidate.pop()
    return tuple(base) if tuple(base) in modules else None


def main() -> int:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    graph: dict[tuple, set] = {m: set() for m in modules}
    for module, file in files.items():
        text = file.read_text()
        is_dir_module = file.stem == "mod"
        for root, segments in paths_in(text):
            target = resolve(module, is_dir_module, root, segments, modules)
            if target is not None and target != module:
                # A path through a parent's re-export is an edge to the parent file only.
                graph[module].add(target)

    # Tarjan's strongly connected components.
    index, low, stack, on_stack, groups = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for group in groups:
        names = sorted(str(files[m].relative_to(src.parent)) for m in group)
        print("import cycle: " + " <-> ".join(names))
    print(f"{len(files)} modules, {sum(len(e) for e in graph.values())} edges, {len(groups)} cycles")
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
