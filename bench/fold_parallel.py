"""Two folds at once on one thread each vs one fold at a time on two threads, in the same run.

The workflow's default on 2 cores (``train.threads`` unset: ``fold_threads`` gives each fold
``cores // n_folds`` threads, at least 1) against what it did before (2 threads, one fold at a
time). Each case trains folds 1 and 2 for ``--epochs`` epochs with ``chromoformer train``
(each fold its own process, as the workflow runs them) on the same synthetic genes through a
binned store; cases alternate, median of ``--repeats``. The runs of a fold are compared:
1 thread and 2 threads give the same validation AUROC to the printed digits (the maths is the
same; the summation order of a matmul differs by thread count, so weights differ by ~1e-6).

    python bench/fold_parallel.py [--genes 2400] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from chromoformer.config import load_config
from chromoformer.data.sources import open_source
from chromoformer.data.synthetic import write_synthetic_dataset


def train(meta: Path, store: Path, fold: int, out: Path, threads: int, epochs: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "chromoformer.cli", "train", "-m", str(meta), "-d", str(store), "--fold", str(fold),
           "-o", str(out), "--threads", str(threads), "--epochs", str(epochs), "--num-workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"train failed:\n{err.decode()[-2000:]}")


def epoch_seconds(run: Path) -> float:
    """Training + validation seconds of a run's epochs (its metrics.tsv), start-up excluded."""
    return float(pd.read_csv(run / "metrics.tsv", sep="\t").seconds.sum())


def case(name: str, meta: Path, store: Path, root: Path, epochs: int) -> tuple[float, float]:
    """(wall seconds of the case, seconds until both folds' epochs were done, start-ups excluded)."""
    t = time.perf_counter()
    if name == "sequential":
        for f in (1, 2):
            wait([train(meta, store, f, root / name / f"fold{f}", 2, epochs)])
    else:
        wait([train(meta, store, f, root / name / f"fold{f}", 1, epochs) for f in (1, 2)])
    wall = time.perf_counter() - t
    ep = [epoch_seconds(root / name / f"fold{f}") for f in (1, 2)]
    return wall, (sum(ep) if name == "sequential" else max(ep))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=2400)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    root = Path(a.workdir or tempfile.mkdtemp(prefix="cf-folds-"))
    meta, npy = write_synthetic_dataset(root / "data", n_genes=a.genes, seed=0)
    store = root / "data" / "store"
    open_source(npy, store=store, build=True, n_feats=load_config().n_feats)
    times: dict[str, list[float]] = {"sequential": [], "parallel": []}
    epochs: dict[str, list[float]] = {"sequential": [], "parallel": []}
    loads = []
    for r in range(a.repeats):
        loads.append(os.getloadavg()[0])
        for name in (("sequential", "parallel") if r % 2 == 0 else ("parallel", "sequential")):
            wall, ep = case(name, meta, store, root / f"r{r}", a.epochs)
            times[name].append(wall)
            epochs[name].append(ep)
    seq, par = statistics.median(times["sequential"]), statistics.median(times["parallel"])
    eseq, epar = statistics.median(epochs["sequential"]), statistics.median(epochs["parallel"])
    auc = {n: [pd.read_csv(root / "r0" / n / f"fold{f}" / "metrics.tsv", sep="\t").iloc[-1]["val_auroc"]
               for f in (1, 2)] for n in times}
    print(f"\n{a.genes} synthetic genes, folds 1 and 2, {a.epochs} epoch(s) each, {os.cpu_count()} CPUs, "
          f"load average before each repeat {', '.join(f'{v:.2f}' for v in loads)}\n")
    print("| case | wall s (median) | all repeats | vs sequential | epochs only s | vs sequential "
          "| val AUROC fold 1, 2 |")
    print("|:--|--:|:--|--:|--:|--:|:--|")
    for n, label in (("sequential", "one fold at a time, 2 threads (before)"),
                     ("parallel", "two folds at once, 1 thread each (now)")):
        med = statistics.median(times[n])
        emed = statistics.median(epochs[n])
        print(f"| {label} | {med:.1f} | {', '.join(f'{v:.1f}' for v in times[n])} | {seq / med:.2f}x | "
              f"{emed:.1f} | {eseq / emed:.2f}x | "
              f"{', '.join(f'{v:.4f}' for v in auc[n])} |")
    print(f"\nspeed-up, wall: {seq / par:.2f}x; epochs alone (what 10-epoch folds are made of): {eseq / epar:.2f}x")


if __name__ == "__main__":
    main()
