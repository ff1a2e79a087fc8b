"""Before/after A/B of a code change: training and inference throughput of two source trees, interleaved.

    git worktree add /tmp/before f0072be       # the tree to compare against (here: before the layout change)
    python bench/layout_ab.py --before /tmp/before/src [--repeats 5]

Each run is one process of ``bench/throughput.py``'s worker for our implementation (batch 64, default config,
2 threads, 192 synthetic genes, data loading included), with ``PYTHONPATH`` set to one tree's ``src``; the two
trees alternate (before, after, after, before, ...) so that machine noise and run order fall on both alike.
Prints the median samples/s of each and the after/before ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
AFTER = HERE.parent / "src"


def one(src: Path, mode: str, data: Path, steps: int, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, str(HERE / "throughput.py"), "--worker", "ours", mode, "--data", str(data), "--steps",
           str(steps)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        raise RuntimeError(f"{src} {mode} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["samples_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path, help="the src/ folder of the tree to compare against")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--infer-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if not (a.before / "chromoformer" / "__init__.py").is_file():
        sys.exit(f"{a.before}: not a src/ folder holding chromoformer/")
    sys.path.insert(0, str(AFTER))
    from chromoformer.data.synthetic import write_synthetic_dataset

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_synthetic_dataset(data, n_genes=192, seed=0)
        for mode, steps in (("infer", a.infer_steps), ("train", a.train_steps)):
            got: dict[str, list[float]] = {"before": [], "after": []}
            for i in range(a.repeats):  # ABBA: each tree runs first as often as second
                order = (("before", a.before), ("after", AFTER))
                for name, src in order if i % 2 == 0 else order[::-1]:
                    got[name].append(one(src, mode, data, steps, a.threads))
            b, f = statistics.median(got["before"]), statistics.median(got["after"])
            rows.append((mode, b, f, f / b, min(got["before"]), max(got["before"]), min(got["after"]),
                         max(got["after"])))
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print(f"median of {a.repeats} interleaved runs each, {a.threads} threads, batch 64, 192 genes\n")
    print("| mode | before samples/s (min-max) | after samples/s (min-max) | after / before |")
    print("|---|---:|---:|---:|")
    for mode, b, f, r, b0, b1, f0, f1 in rows:
        print(f"| {mode} | {b:.1f} ({b0:.1f}-{b1:.1f}) | {f:.1f} ({f0:.1f}-{f1:.1f}) | {r:.3f} |")


if __name__ == "__main__":
    main()
