"""How the package's tree reads: the import graph's size and depth, and the modules one training fold and one
prediction pass through.

    python bench/architecture.py [--genes 48]

Static: every module of ``chromoformer`` (``__init__`` counts as its package), its imports anywhere in the file
(top level or inside functions), the graph's layer count (the longest import chain + 1). Dynamic: a profiler
hook records each call into a ``chromoformer`` function during ``train_fold`` (1 epoch on a small synthetic set)
and ``predict_genes`` (the trained model on the same genes); it reports the modules entered and the calls that
*climb back up* (a module calling one at a higher layer of the import graph than itself, i.e. a lower layer
reaching up into code that sits above it). Uses only the public API (``chromoformer.train_fold``,
``chromoformer.predict_genes``), so the same script measures the tree before and after a reorganisation.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from functools import cache
from pathlib import Path

import chromoformer

SRC = Path(chromoformer.__file__).parent


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    mods = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            graph[m] |= {n for n in names if n in mods and n != m and not m.startswith(n + ".")}
    return graph


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """Layer of each module: 0 for one importing no other, else 1 + the highest layer it imports."""

    @cache
    def layer(m: str) -> int:
        return 1 + max((layer(d) for d in graph[m]), default=-1)

    return {m: layer(m) for m in graph}


def static_counts(graph: dict[str, set[str]]) -> dict[str, int]:
    """The tree's static figures (issue #33's before/after table): lines, small modules, repeated stems, public
    functions of more than 6 parameters (cli/ and model/ forward() aside) and the differential-task guards."""
    files = {_module(p): p for p in SRC.rglob("*.py")}
    texts = {m: p.read_text() for m, p in files.items()}
    faces = {m for m, p in files.items() if p.name in ("__init__.py", "__main__.py") or m == "chromoformer.train"}
    library = [m for m in files if not m.startswith("chromoformer.cli")]
    stems = [files[m].stem for m in library if m not in faces]
    many = 0
    for m in library:
        if m.startswith("chromoformer.model"):
            continue
        for node in ast.walk(ast.parse(texts[m])):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                a = node.args
                n = [x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
                many += len(n) > 6
    n_lines = {m: len(t.splitlines()) for m, t in texts.items()}
    return {"modules": len(graph), "lines": sum(n_lines.values()), "import edges": sum(map(len, graph.values())),
            "modules under 60 lines": sum(v < 60 for v in n_lines.values()),
            "non-face modules under 40 lines": sum(v < 40 for m, v in n_lines.items() if m not in faces),
            "repeated library stems": len(stems) - len(set(stems)),
            "public functions over 6 parameters": many,
            "task == 'diff' guards": sum(t.count('== "diff"') + t.count('!= "diff"') for t in texts.values())}


def trace(fn, *args, **kwargs) -> list[tuple[str, str]]:
    """(caller module, callee module) of each call between two different chromoformer modules during fn()."""
    root = str(SRC)
    calls: list[tuple[str, str]] = []
    by_file: dict[str, str | None] = {}

    def mod_of(filename: str) -> str | None:
        if filename not in by_file:
            by_file[filename] = _module(Path(filename)) if filename.startswith(root) else None
        return by_file[filename]

    def hook(frame, event, arg):
        if event != "call":
            return
        callee = mod_of(frame.f_code.co_filename)
        if callee is None:
            return
        f = frame.f_back
        while f is not None and mod_of(f.f_code.co_filename) is None:
            f = f.f_back
        caller = mod_of(f.f_code.co_filename) if f is not None else None
        if caller and caller != callee:
            calls.append((caller, callee))

    sys.setprofile(hook)
    try:
        fn(*args, **kwargs)
    finally:
        sys.setprofile(None)
    return calls


def summary(calls: list[tuple[str, str]], layer: dict[str, int]) -> tuple[int, int, int]:
    """(modules entered, distinct module->module calls, distinct calls that climb back up)."""
    mods = {m for pair in calls for m in pair}
    edges = set(calls)
    up = {(a, b) for a, b in edges if layer.get(b, 0) > layer.get(a, 0)}
    return len(mods), len(edges), len(up)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=48)
    ap.add_argument("--verbose", action="store_true", help="list the modules and the upward calls")
    args = ap.parse_args()

    from chromoformer import RunSpec, load_model, open_source, predict_genes, read_metadata, train_fold
    from chromoformer.data.synthetic import write_synthetic_dataset

    try:  # the options object; a tree from before it took the keyword itself (measuring an older checkout)
        from chromoformer.engine.runtime import Runtime

        no_workers: dict = {"runtime": Runtime(num_workers=0)}
    except ImportError:
        no_workers = {"num_workers": 0}

    graph = import_graph()
    layer = layers(graph)
    print(f"import graph: {len(graph)} modules, {sum(map(len, graph.values()))} edges, "
          f"{max(layer.values()) + 1} layers")
    for k, v in static_counts(graph).items():
        print(f"{k}: {v}")
    with tempfile.TemporaryDirectory() as tmp:
        meta, npy = write_synthetic_dataset(Path(tmp) / "data", n_genes=args.genes, seed=1)
        spec = RunSpec().replace(num_epoch=1)
        fold_calls = trace(train_fold, spec, meta, npy, 1, Path(tmp) / "run", **no_workers)
        model = load_model(Path(tmp) / "run" / "best.pt")
        genes, source = read_metadata(meta), open_source(npy)
        pred_calls = trace(predict_genes, [model], genes, source)
    print("| path | modules entered | distinct module->module calls | of which climb back up |")
    print("|---|---:|---:|---:|")
    for name, calls in (("one training fold (train_fold)", fold_calls), ("one prediction (predict_genes)",
                                                                          pred_calls)):
        print(f"| {name} | " + " | ".join(map(str, summary(calls, layer))) + " |")
        if args.verbose:
            mods = sorted({m for pair in calls for m in pair}, key=lambda m: (layer[m], m))
            print("   modules:", ", ".join(f"{m.removeprefix('chromoformer.')}[{layer[m]}]" for m in mods))
            for a, b in sorted({(a, b) for a, b in set(calls) if layer[b] > layer[a]}):
                print(f"   up: {a} [{layer[a]}] -> {b} [{layer[b]}]")


if __name__ == "__main__":
    main()
