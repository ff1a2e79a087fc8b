"""bf16 vs fp32 on the read-level simulation: held-out accuracy and training speed, in one interleaved run.

Simulates and preprocesses the genome of ``sim_data.prepare`` (the simulation benches' data), then trains
Chromoformer on every fold in fp32 and in bf16 (``--precision``), same seed, same data, alternating which goes
first from fold to fold so that a slow spell of the machine falls on both. For each task (clf: AUROC, reg:
Pearson r of log2(RPKM + 1)) it prints the mean and sd over folds of each precision, the mean and sd of the
per-fold difference (bf16 - fp32) next to fp32's fold-to-fold sd (the noise it is to be judged against), and
the median over folds of the training-time ratio fp32 / bf16. Scores are each run's held-out predictions of its
last epoch (no selection on the held-out fold). Usage::

    python bench/precision.py [--span-mb 60] [--epochs 10] [--lr 2e-4] [--tasks clf reg] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

from chromoformer.config import MARKS
from chromoformer.engine.runtime import Runtime
from chromoformer.metrics import task_metrics
from chromoformer.spec import RunSpec
from chromoformer.training.compare import out_of_fold
from chromoformer.training.fit import train_fold

try:
    from sim_data import prepare
except ImportError:  # run as a module: python -m bench.precision
    from bench.sim_data import prepare

PRECISIONS = ("fp32", "bf16")
METRIC = {"clf": "auroc", "reg": "pearson"}


def run(wd: Path, task: str, epochs: int, lr: float, threads: int | None) -> list[dict]:
    """One row per (fold, precision): the held-out metric and the training seconds."""
    spec = RunSpec(marks=MARKS, task=task).replace(num_epoch=epochs, lr=lr)
    rows = []
    for fold in (1, 2, 3, 4):
        order = PRECISIONS if fold % 2 else PRECISIONS[::-1]  # interleaved: each goes first in half the folds
        for p in order:
            oof, seconds = out_of_fold(train_fold, (wd / "meta.csv", wd / "store"), wd / "runs" / f"{task}-{p}",
                                       "chromoformer", (fold,), spec,
                                       runtime=Runtime(num_workers=0, precision=p, threads=threads))
            m = task_metrics(oof.score.to_numpy(), oof.label.to_numpy(), task)[METRIC[task]]
            rows.append({"task": task, "fold": fold, "precision": p, "metric": m, "seconds": seconds})
            print(f"{task} fold {fold} {p}: {METRIC[task]} {m:.4f}, {seconds:.1f} s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| task | metric | fp32 mean +- sd (folds) | bf16 mean +- sd | bf16 - fp32 per fold, mean +- sd | "
           "time fp32 / bf16 (median over folds) |", "|---|---|---:|---:|---:|---:|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        got = {p: sorted((r for r in rows if r["task"] == task and r["precision"] == p), key=lambda r: r["fold"])
               for p in PRECISIONS}
        a, b = (np.array([r["metric"] for r in got[p]]) for p in PRECISIONS)
        ta, tb = (np.array([r["seconds"] for r in got[p]]) for p in PRECISIONS)
        d = b - a
        out.append(f"| {task} | {METRIC[task]} | {a.mean():.3f} +- {a.std(ddof=1):.3f} | "
                   f"{b.mean():.3f} +- {b.std(ddof=1):.3f} | {d.mean():+.4f} +- {d.std(ddof=1):.4f} | "
                   f"{np.median(ta / tb):.2f} ({ta.sum():.0f} s / {tb.sum():.0f} s) |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--span-mb", type=float, default=60.0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--tasks", nargs="+", default=["clf", "reg"], choices=("clf", "reg"))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-precision-"))
    meta, *_ = prepare(wd, a.span_mb)
    print(f"{len(meta)} simulated genes, {a.epochs} epochs, lr {a.lr}, workdir {wd}", flush=True)
    rows = [r for task in a.tasks for r in run(wd, task, a.epochs, a.lr, a.threads)]
    print(table(rows))


if __name__ == "__main__":
    main()
