"""glibc's allocator as it comes against tuned thresholds, for two 1-thread training folds at once (the
workflow on 2 cores). A lever tried for issue 22 and not kept: see bench/README.md.

A default training step allocates and frees tensors of 1-30 MB many times (the 400-bin Embedding branch's
activations and gradients, attention buffers). glibc serves blocks above its mmap threshold with fresh
``mmap`` pages and gives the top of the heap back above its trim threshold; in one process alone, a 1-thread
step looked ~4% faster with both raised. Here is the setting that counts: ``chromoformer train`` of folds 1
and 2 side by side (``--threads 1``, ``--num-workers 0``, the default config, ``--epochs`` over ``--genes``
synthetic genes from the store), each case its own processes, interleaved, median of ``--repeats``: glibc as
it comes, and with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` at 1 GiB (read by glibc at
process start). Wall time of the pair, epoch seconds from each run's ``metrics.tsv``, peak RSS of each
training process (its own ``ru_maxrss``), and whether the two cases' checkpoints are the same tensors.

    python bench/malloc.py --genes 1200 --epochs 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from chromoformer.data.sources import open_source
from chromoformer.data.synthetic import write_synthetic_dataset

GIB = str(1 << 30)
CASES = {"glibc as it comes": {}, "mmap and trim thresholds 1 GiB": {"MALLOC_MMAP_THRESHOLD_": GIB,
                                                                     "MALLOC_TRIM_THRESHOLD_": GIB}}


def run_pair(wd: Path, out: Path, malloc: dict, epochs: int) -> tuple[float, list[float], list[float]]:
    """Folds 1 and 2 at once; returns wall seconds, each fold's epoch seconds and peak RSS MiB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | malloc
    code = ("import resource, runpy, sys; sys.argv = ['chromoformer'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('chromoformer.cli', run_name='__main__')\n"
            "finally:\n    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, "train", "-m", str(wd / "meta.csv"), "-d",
                               str(wd / "store"), "--fold", str(f), "-o", str(out / f"fold{f}"), "--threads", "1",
                               "--num-workers", "0", "--epochs", str(epochs)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for f in (1, 2)]
    rss = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(err[-2000:])
        rss.append(int(err.rsplit("MAXRSS", 1)[1].split()[0]) / 1024)
    wall = time.perf_counter() - t0
    secs = [float(pd.read_csv(out / f"fold{f}" / "metrics.tsv", sep="\t")["seconds"].sum()) for f in (1, 2)]
    return wall, secs, rss


def same_weights(a: Path, b: Path) -> bool:
    for f in (1, 2):
        x, y = (torch.load(d / f"fold{f}" / "last.pt", weights_only=False)["net"] for d in (a, b))
        if x.keys() != y.keys() or not all(torch.equal(x[k], y[k]) for k in x):
            return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=1200)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-malloc-"))
    if not (wd / "meta.csv").is_file():
        write_synthetic_dataset(wd, n_genes=a.genes, seed=0)
    open_source(wd / "npy", store=wd / "store", build=True, n_feats=7)
    for old in wd.glob("runs-*"):  # a previous invocation's runs
        shutil.rmtree(old)
    res: dict[str, list] = {k: [] for k in CASES}
    loads = []
    for r in range(a.repeats):
        for c, (name, malloc) in enumerate(CASES.items()):
            loads.append(os.getloadavg()[0])
            res[name].append(run_pair(wd, wd / f"runs-{c}-{r}", malloc, a.epochs))
    identical = same_weights(wd / "runs-0-0", wd / "runs-1-0")
    print(f"\nfolds 1 and 2 of {a.genes} synthetic genes at once, 1 thread each, {a.epochs} epoch(s), default "
          f"config; load average before each case {min(loads):.2f}-{max(loads):.2f}; median of {a.repeats}, "
          "interleaved")
    print("| case | wall s (pair) | epoch s (train + validation, mean of the 2 folds) | peak RSS MiB (max of 2) |")
    print("|:--|--:|--:|--:|")
    med = {}
    for name, rows in res.items():
        wall = statistics.median(r[0] for r in rows)
        ep = statistics.median(statistics.mean(r[1]) for r in rows)
        rss = max(max(r[2]) for r in rows)
        med[name] = (wall, ep)
        print(f"| {name} | {wall:.1f} | {ep:.1f} | {rss:.0f} |")
    (w0, e0), (w1, e1) = med.values()
    print(f"| **ratio** | **{w0 / w1:.3f}x** | **{e0 / e1:.3f}x** | weights identical: {identical} |")


if __name__ == "__main__":
    main()
