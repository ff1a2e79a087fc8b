"""Run bad-input corpus cases against one or more source trees and classify every outcome.

    python bench/hostile_corpus.py --tree . --tree /tmp/before [--families hostile] [--timeout 60]

Each case (tests/corpus/, built once on a synthetic dataset) runs as its own process,
``python -m chromoformer.cli ARGV`` with ``PYTHONPATH=TREE/src``, in a fresh folder, and ends as one of:

- **security**: a payload ran (a file named ``PWNED*`` appeared) or a file was written outside both the
  case's folder and the inputs' folder;
- **lost**: an input was changed or removed, or a file was written into the inputs' folder (not its
  ``.stores`` caches);
- **hang**: still running after ``--timeout`` seconds;
- **traceback**: a Python traceback, or death by a signal (a segfault is rc -11);
- **silent**: exit 0 (a wrong result, since every case is an invalid input), an output left under its
  final name by a command that failed, or any exit other than 0/2 without a traceback;
- **clear**: exit 2 with exactly one ``chromoformer: error:`` line.

The first matching class wins (in that order). Prints one table row per tree, the ratio of clear errors,
and the cases of each tree that were not clear. Compare a before tree made with
``git worktree add /tmp/before <commit>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

CLASSES = ("clear", "traceback", "silent", "lost", "hang", "security")


def _files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.is_symlink()
            and "pristine" not in p.relative_to(root).parts[:1]}


def classify(case, tree: Path, cwd: Path, watch: Path, inputs: Path, timeout: float) -> str:
    env = {**os.environ, **case.env, "PYTHONPATH": str(tree / "src")}
    before = _files(watch)
    proc = subprocess.Popen([sys.executable, "-m", "chromoformer.cli", *case.argv], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and anything it started (snakemake's jobs)
        _, err = proc.communicate()
        hung = True
    after = _files(watch)
    touched = [p for p, t in after.items() if before.get(p) != t and ".stores" not in p.parts]
    if any(p.name.startswith("PWNED") for p in touched) or any(
            case.tmp not in p.parents and inputs not in p.parents for p in touched):
        return "security"
    if any(not p.is_file() or p.read_bytes() != content for p, content in case.keep.items()) or any(
            inputs in p.parents for p in touched) or any(p not in after for p in before if inputs in p.parents):
        return "lost"
    if hung:
        return "hang"
    if "Traceback" in err or proc.returncode < 0:
        return "traceback"
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    if proc.returncode == 2 and len(errors) == 1 and not any(p.exists() for p in case.absent):
        return "clear"
    return "silent"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", type=Path, help="source tree (repeatable; default: this one)")
    ap.add_argument("--families", nargs="+", default=["hostile"], help="tests/corpus modules to run")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    trees = [t.resolve() for t in (a.tree or [ROOT])]
    import importlib

    from corpus.builders import synthetic_inputs_in
    from fault_inputs import Inputs

    work = Path(tempfile.mkdtemp(prefix="hostile-corpus-"))
    base = synthetic_inputs_in(work / "inputs")
    pristine = Path(shutil.copytree(base.tmp, work / "pristine", symlinks=True))
    state = _files(base.tmp)
    cases = {n: c for f in a.families for n, c in importlib.import_module(f"corpus.{f}").CASES.items()}
    results: dict[Path, dict[str, str]] = {t: {} for t in trees}
    for i, (name, make) in enumerate(cases.items()):
        for tree in trees:
            tmp = work / f"case{i}-{trees.index(tree)}"
            tmp.mkdir()
            case = make(Inputs(**{**base.__dict__, "tmp": tmp}))
            case.tmp = tmp
            results[tree][name] = classify(case, tree, tmp, work, base.tmp, a.timeout)
            if _files(base.tmp) != state:  # a case changed the shared inputs: the next one gets them intact
                shutil.rmtree(base.tmp)
                shutil.copytree(pristine, base.tmp, symlinks=True)
                state = _files(base.tmp)
        print(f"{name:<45} " + "  ".join(f"{results[t][name]:<9}" for t in trees), file=sys.stderr, flush=True)
    print(f"\n| tree | cases | {' | '.join(CLASSES)} | clear ratio |")
    print("|---|---:|" + "---:|" * len(CLASSES) + "---:|")
    for t in trees:
        n = len(results[t])
        counts = [sum(v == c for v in results[t].values()) for c in CLASSES]
        print(f"| {t} | {n} | " + " | ".join(map(str, counts)) + f" | {counts[0] / n:.2f} |")
    for t in trees:
        bad = {k: v for k, v in results[t].items() if v != "clear"}
        print(f"\n{t}: not clear: " + (", ".join(f"{k} ({v})" for k, v in bad.items()) or "none"))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
