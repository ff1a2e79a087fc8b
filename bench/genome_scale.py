"""One cell type from BAMs to evaluated models, at genome scale: time, memory and disk per step.

For each ``--fraction`` of the hg19 genome (``chromoformer simulate --genome-scale``: genes
and reads scale with it; 1.0 = 19,000 genes and 25 M reads per mark), this runs, on this
machine:

1. the simulation (its own process);
2. ``chromoformer workflow --cores N`` on a 7-mark sample sheet: genes, metadata, one
   signals job per mark, the merge, 4 folds x ``--epochs`` of training, evaluation and the
   4-fold ensemble prediction of every gene; per-step wall time and peak RSS come from
   snakemake's ``benchmark`` files (per job: the signals row is the slowest of the 7 mark
   jobs and the train row the slowest fold; "sum" columns add every job of the step).

Then the disk used (inputs = the simulated BAMs and tables; the store; the runs'
checkpoints; everything else the workflow wrote), held-out AUROC pooled over the folds next
to the generative oracle's on the same genes, and per step the slope of log(time) and
log(peak RSS) against log(genes) over the fractions (1 = linear, 0 = flat). Usage::

    python bench/genome_scale.py --fractions 0.02 0.05 0.1 [--epochs 10] [--cores 2] [--workdir DIR]
    python bench/genome_scale.py --fractions 1 --epochs 2     # full size, 10 epochs projected
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

MARKS = ["H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac"]


def run(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; (wall seconds, peak RSS MiB of the process tree it waited for)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd[:4])}... failed:\n{proc.stderr.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def one_size(fraction: float, wd: Path, epochs: int, cores: int, reads: int, project: int) -> dict:
    from sklearn.metrics import roc_auc_score

    sim, res = wd / "sim", {"fraction": fraction}
    exe = [sys.executable, "-m", "chromoformer.cli"]
    res["simulate s"], res["simulate MiB"] = run([*exe, "simulate", "-o", str(sim), "--genome-scale", "--fraction",
                                                  str(fraction), "--reads-per-mark", str(reads)])
    sheet = {"annotation": str(sim / "genes.gtf"), "chrom_sizes": str(sim / "genome.sizes"),
             "expression": str(sim / "expression.tsv"), "marks": MARKS,
             "samples": {"SIM": {"interactions": str(sim / "pchic.tsv"),
                                 "signals": {m: str(sim / f"{m}.bam") for m in MARKS}}},
             "train": {"epochs": epochs, "folds": [1, 2, 3, 4], "extra": "--num-workers 0"}}
    (wd / "samples.yaml").write_text(yaml.safe_dump(sheet))
    out = wd / "wf"
    res["workflow s"], _ = run([*exe, "workflow", "--config", str(wd / "samples.yaml"), "--directory", str(out),
                                "--cores", str(cores), "--", "--quiet"])
    b = out / "benchmarks"

    def bench(*names: str) -> pd.DataFrame:
        return pd.concat([pd.read_csv(b / n, sep="\t") for n in names])

    steps = {"genes": ["genes.tsv"], "metadata": ["SIM/metadata.tsv"],
             "signals (per mark)": [f"SIM/signals-{m}.tsv" for m in MARKS], "merge": ["SIM/signals-merge.tsv"],
             "train (per fold)": [f"SIM/train-fold{f}.tsv" for f in (1, 2, 3, 4)], "evaluate": ["SIM/evaluate.tsv"],
             "predict (4-fold ensemble)": ["SIM/predict.tsv"]}
    for step, files in steps.items():
        t = bench(*files)
        res[f"{step} s"], res[f"{step} MiB"] = float(t.s.max()), float(t.max_rss.max())
        res[f"{step} sum s"] = float(t.s.sum())
    # every epoch is the same work: the measured epochs project the run to --project-epochs
    sec = pd.concat([pd.read_csv(out / "SIM" / "runs" / f"fold{f}" / "metrics.tsv", sep="\t").assign(fold=f)
                     for f in (1, 2, 3, 4)])
    res["epoch s (median)"] = float(sec.seconds.median())
    res["epoch s (max/min)"] = float(sec.seconds.max() / sec.seconds.min())
    per_fold = sec.groupby("fold").seconds.median().sum()
    res[f"workflow s at {project} epochs"] = res["workflow s"] + (project - epochs) * float(per_fold)
    meta = pd.read_csv(out / "SIM" / "meta.csv")
    res["genes"] = len(meta)
    res["reads/mark"] = reads * fraction
    res["inputs MiB"] = du(sim)
    res["store MiB"] = du(out / "SIM" / "store")
    res["runs MiB"] = du(out / "SIM" / "runs")
    res["other MiB"] = du(out) - res["store MiB"] - res["runs MiB"]
    oof = pd.read_csv(out / "SIM" / "evaluation" / "oof_predictions.csv")
    truth = pd.read_csv(sim / "truth.tsv", sep="\t").set_index("gene_id").loc[oof.gene_id]
    res["AUROC"] = roc_auc_score(oof.label, oof.score)
    res["oracle AUROC"] = roc_auc_score(oof.label, truth.oracle)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--project-epochs", type=int, default=10,
                   help="also report the workflow time projected to this many epochs from the measured epoch times")
    p.add_argument("--reads-per-mark", type=int, default=25_000_000, help="at fraction 1")
    p.add_argument("--workdir", default=None)
    p.add_argument("--keep", action="store_true", help="keep each size's files")
    a = p.parse_args()
    root = Path(a.workdir or tempfile.mkdtemp(prefix="cf-genome-"))
    rows = []
    for f in a.fractions:
        wd = root / f"fraction-{f:g}"
        shutil.rmtree(wd, ignore_errors=True)
        wd.mkdir(parents=True)
        rows.append(one_size(f, wd, a.epochs, a.cores, a.reads_per_mark, a.project_epochs))
        print(pd.DataFrame(rows).T.to_string(header=False, float_format=lambda v: f"{v:.4g}"), flush=True)
        if not a.keep:
            shutil.rmtree(wd / "sim", ignore_errors=True)
    df = pd.DataFrame(rows)
    steps = [c[:-2] for c in df.columns if c.endswith(" s") and not c.endswith(" sum s") and "epoch" not in c]
    table = []
    for s in steps:
        row = {"step": s}
        for _, r in df.iterrows():
            row[f"{int(r.genes)} genes: s"] = r[f"{s} s"]
            if f"{s} MiB" in r:
                row[f"{int(r.genes)} genes: MiB"] = r[f"{s} MiB"]
            if f"{s} sum s" in r:
                row[f"{int(r.genes)} genes: sum s"] = r[f"{s} sum s"]
        if len(df) >= 2:
            x = np.log(df.genes.to_numpy(float))
            row["time slope"] = float(np.polyfit(x, np.log(df[f"{s} s"].to_numpy(float)), 1)[0])
            if f"{s} MiB" in df:
                row["RSS slope"] = float(np.polyfit(x, np.log(df[f"{s} MiB"].to_numpy(float)), 1)[0])
        table.append(row)
    print(f"\n{a.epochs} epochs x 4 folds, {a.cores} cores; work dir {root}\n")
    print(pd.DataFrame(table).to_markdown(index=False, floatfmt=".3g"))
    print()
    print(df[["fraction", "genes", "reads/mark", "inputs MiB", "store MiB", "runs MiB", "other MiB",
              "epoch s (median)", "epoch s (max/min)", "workflow s", f"workflow s at {a.project_epochs} epochs",
              "AUROC", "oracle AUROC"]]
          .to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
