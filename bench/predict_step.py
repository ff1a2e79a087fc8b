"""The workflow's last step at full size: the 4-fold ensemble prediction, with and without a loader worker.

Runs the predict command of the workflow's ``predict`` rule (batch 256, the model jobs' environment from
``chromoformer.workflow.jobs``) on a finished workflow directory, e.g. the one ``genome_scale.py --fractions
1`` leaves (19,000 genes), with ``--num-workers auto`` (one worker on 2 cores) and ``--num-workers 0``, each
case its own process tree, interleaved, median of ``--repeats``. Memory is sampled every 0.2 s over the
process tree as snakemake's ``benchmark`` does (RSS summed over the processes), with USS and PSS beside it
(RSS counts the pages the processes share once per process). The cases' predictions are compared byte for
byte.

    python bench/predict_step.py --workdir /work/bm/genome/fraction-1/wf --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from chromoformer.workflow.jobs import model_job_env

CASES = {"auto (1 worker)": "auto", "0 workers": "0"}


def tree_memory(p: psutil.Process) -> tuple[float, float, float]:
    """RSS, USS and PSS (MiB) summed over ``p`` and its descendants."""
    rss = uss = pss = 0.0
    for q in [p, *p.children(recursive=True)]:
        try:
            m = q.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss, uss, pss = rss + m.rss, uss + m.uss, pss + m.pss
    return rss / 2**20, uss / 2**20, pss / 2**20


def run_case(wd: Path, out: Path, workers: str) -> tuple[float, float, float, float]:
    ks = [w for f in (1, 2, 3, 4) for w in ("-k", str(wd / "SIM" / "runs" / f"fold{f}" / "best.pt"))]
    cmd = [sys.executable, "-m", "chromoformer.cli", "predict", "-m", str(wd / "SIM" / "meta.csv"), "-d",
           str(wd / "SIM" / "store"), *ks, "-o", str(out), "--batch-size", "256", "--num-workers", workers]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=model_job_env(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps, peak = psutil.Process(proc.pid), (0.0, 0.0, 0.0)
    while proc.poll() is None:
        try:
            now = tree_memory(ps)
        except psutil.NoSuchProcess:
            break
        peak = tuple(max(a, b) for a, b in zip(peak, now, strict=True))  # type: ignore[assignment]
        time.sleep(0.2)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.wait():
        raise SystemExit(f"predict failed:\n{err[-3000:]}")
    return time.perf_counter() - t0, *peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, help="a finished workflow directory (holds SIM/runs, SIM/store)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=None, help="where the predictions go (default: a folder beside --workdir)")
    a = p.parse_args()
    wd = Path(a.workdir)
    out = Path(a.out or wd.parent / "predict-step")
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, list] = {k: [] for k in CASES}
    loads = []
    for r in range(a.repeats):
        for c, (name, workers) in enumerate(CASES.items()):
            loads.append(os.getloadavg()[0])
            res[name].append(run_case(wd, out / f"pred-{c}-{r}.csv", workers))
    same = (out / "pred-0-0.csv").read_bytes() == (out / "pred-1-0.csv").read_bytes()
    n = (out / "pred-0-0.csv").read_text().count("\n") - 1
    print(f"\n{n} genes x 4 checkpoints, batch 256, 2 threads; load average before each case {min(loads):.2f}-"
          f"{max(loads):.2f}; median of {a.repeats}, interleaved")
    print("| --num-workers | wall s | peak tree RSS MiB | peak tree USS MiB | peak tree PSS MiB |")
    print("|:--|--:|--:|--:|--:|")
    for name, rows in res.items():
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"| {name} | {med[0]:.1f} | {med[1]:.0f} | {med[2]:.0f} | {med[3]:.0f} |")
    print(f"predictions byte-identical: {same}")


if __name__ == "__main__":
    main()
