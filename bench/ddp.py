"""Data-parallel training: samples/s with 1 and N torchrun processes, and the weight agreement.

Default config (full model), global batch 64, synthetic genes, ``--epochs`` epochs of one
fold. Each case is a fresh ``python -m chromoformer.train`` (baseline: one plain process
with all threads) or ``torchrun --standalone --nproc_per_node N`` (threads split between
the processes), repeated; samples/s = training genes x epochs / summed training-epoch time
(``metrics.tsv`` seconds minus nothing: they include validation, the same for every case).
Also prints the largest weight difference of each DDP run from the single-process run
(the same global batch: they must agree to float rounding). Usage::

    python bench/ddp.py [--genes 256] [--epochs 2] [--nprocs 2] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch


def train(data: Path, out: Path, nproc: int, threads: int, epochs: int) -> float:
    """Train one fold; returns the summed epoch seconds from metrics.tsv."""
    per = max(1, threads // nproc)
    argv = ["-m", str(data / "meta.csv"), "-d", str(data / "npy"), "--fold", "1", "-o", str(out),
            "--epochs", str(epochs), "--num-workers", "0", "--threads", str(per), "--device", "cpu"]
    launcher = ([shutil.which("torchrun") or "torchrun", "--standalone", "--nproc_per_node", str(nproc)]
                if nproc > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": str(per)}
    subprocess.run([*launcher, "-m", "chromoformer.train", *argv], env=env, check=True, capture_output=True)
    return float(pd.read_csv(out / "metrics.tsv", sep="\t").seconds.sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=256)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--nprocs", type=int, nargs="+", default=[2])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads in all, split among processes")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    from chromoformer.data.folds import split_genes
    from chromoformer.data.synthetic import write_synthetic_dataset

    work = Path(tempfile.mkdtemp(prefix="cf-ddp-"))
    meta, _ = write_synthetic_dataset(work / "data", n_genes=a.genes, seed=0)
    from chromoformer.data import read_metadata

    n_train = len(split_genes(read_metadata(meta), 1)[0])
    rows, ref = [], None
    for nproc in (1, *a.nprocs):
        secs, diffs = [], []
        for r in range(a.repeats):
            out = work / f"p{nproc}-r{r}"
            secs.append(train(work / "data", out, nproc, a.threads, a.epochs))
            net = torch.load(out / "last.pt", weights_only=False)["net"]
            if ref is None:
                ref = net
            diffs.append(max((net[k] - ref[k]).abs().max().item() for k in ref))
        rows.append({"processes": nproc, "threads each": max(1, a.threads // nproc),
                     "samples/s (median)": n_train * a.epochs / statistics.median(secs),
                     "max |w - w_1proc|": max(diffs)})
    t = pd.DataFrame(rows)
    t["vs 1 process"] = t["samples/s (median)"] / t["samples/s (median)"].iloc[0]
    print(f"\n{n_train} training genes x {a.epochs} epochs, default config, global batch 64, "
          f"{a.threads} threads in all, {a.repeats} repeats; work dir {work}\n")
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
