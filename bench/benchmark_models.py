"""The paper's benchmark on one simulated genome: every model, the same 4 chromosome folds, next to the oracle.

clf and reg: the read-level simulation (``chromoformer simulate``: real GM12878 chr11 mark layout, BAMs ->
binned store, pcHi-C) trains Chromoformer, Chromoformer without pCREs, DeepChrome, AttentiveChrome, HM-CRNN
and GC-MERGE. diff: the simulated pair of cell types (:func:`chromoformer.diff.simulation.write_synthetic_pair`)
trains Chromoformer-diff and DeepDiff. Every model is trained by ``chromoformer.training.compare.compare`` in its
own process (same seed, same folds, last-epoch held-out predictions, each baseline under its original protocol
where it has one); the parent reads each process's peak RSS from ``os.wait4``. The oracle is the generative
model's noiseless value (log expression, or fold change ``L_B - L_A``) scored like a model, per fold. Usage::

    python bench/benchmark_models.py [--span-mb 60] [--pair-genes 600] [--epochs 15] [--lr 2e-4] [--workdir W]
        [--tasks clf reg diff] [--protocols original chromoformer] [--models ...]

Writes ``benchmark.tsv``, ``benchmark_folds.tsv`` and ``benchmark_<task>.png`` in the work dir and prints the
table. Finished folds are resumed, so a killed run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import MARKS, ORIGINAL_PROTOCOLS, default_marks
from chromoformer.data.folds import FOLDS, held_out_split
from chromoformer.data.sources import signal_marks
from chromoformer.diff.fitting import compare_pairs
from chromoformer.diff.simulation import write_synthetic_pair
from chromoformer.engine.runtime import Runtime
from chromoformer.files.atomic import write_table
from chromoformer.files.layouts import CompareFiles, PairSimulationFiles
from chromoformer.metrics import task_metrics
from chromoformer.results.plots import comparison_plot
from chromoformer.spec import RunSpec
from chromoformer.training.compare import METRICS, compare

try:
    from sim_data import prepare
except ImportError:  # run as a module: python -m bench.benchmark_models
    from bench.sim_data import prepare

SINGLE = ("chromoformer", "chromoformer-nopcre", "deepchrome", "attentivechrome", "hmcrnn", "gcmerge")
MODELS = {"clf": SINGLE, "reg": SINGLE, "diff": ("chromoformer-diff", "deepdiff")}


def runs(task: str, protocols: list[str], models: list[str] | None = None) -> list[tuple[str, str]]:
    """(model, protocol) pairs to train: a baseline with a recorded recipe once per protocol asked for,
    every other model once (under Chromoformer's, its own); ``models`` keeps only those."""
    out = []
    for model in MODELS[task]:
        if models and model not in models:
            continue
        out += [(model, p) for p in protocols] if model in ORIGINAL_PROTOCOLS else [(model, "chromoformer")]
    return out


def row_name(model: str, protocol: str) -> str:
    return model if model not in ORIGINAL_PROTOCOLS or protocol == "original" else f"{model} ({protocol} protocol)"


def inputs(task: str, wd: Path, a: argparse.Namespace) -> tuple[dict, pd.DataFrame]:
    """``compare``'s data arguments for ``task`` and the oracle per gene (gene_id, split, label, oracle[, ...])."""
    if task != "diff":
        meta, meta_csv, store, truth = prepare(wd / "genome", a.span_mb)
        label = meta.label if task == "clf" else np.log2(meta.expression + 1)
        table = pd.DataFrame({"gene_id": meta.gene_id, "split": meta.split, "label": label,
                              "oracle": truth.loc[meta.gene_id, "oracle"].to_numpy(),
                              "oracle_promoter": truth.loc[meta.gene_id, "promoter_activity"].to_numpy()})
        return {"meta": meta_csv, "signal": store}, table
    files = PairSimulationFiles(wd / "pair")
    if not files.oracle.is_file():
        write_synthetic_pair(files.dir, n_genes=a.pair_genes, seed=a.pair_seed)
    o = pd.read_csv(files.oracle)
    split = pd.read_csv(files.cell("A").meta).set_index("gene_id").loc[o.gene_id, "split"].to_numpy()
    table = pd.DataFrame({"gene_id": o.gene_id, "split": split, "label": o.lfc, "oracle": o.oracle_lfc,
                          "oracle_promoter": o.oracle_promoter_lfc})
    a_, b_ = files.cell("A"), files.cell("B")
    return {"meta": a_.meta, "signal": a_.npy, "meta_b": b_.meta, "signal_b": b_.npy}, table


def check_workdir(wd: Path, a: argparse.Namespace) -> None:
    """A work dir holds one benchmark: reusing it with other data or training settings is refused."""
    want = {k: getattr(a, k) for k in ("span_mb", "pair_genes", "pair_seed", "epochs", "lr", "seed")}
    if a.protocols != ["original"]:  # a work dir from before --protocols holds the original protocol's runs
        want["protocols"] = a.protocols
    rec = wd / "benchmark.json"
    if rec.is_file() and (had := json.loads(rec.read_text())) != want:
        raise SystemExit(f"{wd} holds a benchmark run with {had}, not {want}: give another --workdir")
    wd.mkdir(parents=True, exist_ok=True)
    rec.write_text(json.dumps(want) + "\n")


def run_dir(wd: Path, task: str, model: str, protocol: str) -> Path:
    return wd / "runs" / task / (model if protocol == "original" else f"{model}@{protocol}")


def worker(task: str, model: str, protocol: str, wd: Path, a: argparse.Namespace) -> None:
    """Train ``model`` under ``protocol`` on every fold of ``task`` (this process's peak RSS is the model's)."""
    data, _ = inputs(task, wd, a)
    marks = MARKS if task != "diff" else (signal_marks(data["signal"]) or default_marks(len(MARKS)))
    spec = RunSpec(marks=marks, task=task, arch=model if task == "diff" else "chromoformer", protocol=protocol)
    spec = spec.replace(num_epoch=a.epochs, **({"lr": a.lr} if a.lr is not None else {}), seed=a.seed)
    run = dict(models=[model], spec=spec, runtime=Runtime(num_workers=0))
    out = run_dir(wd, task, model, protocol)
    if task == "diff":
        compare_pairs(data["meta"], data["signal"], data["meta_b"], data["signal_b"], out, **run)
    else:
        compare(data["meta"], data["signal"], out, **run)


def run_model(task: str, model: str, protocol: str, wd: Path, argv: list[str]) -> float:
    """Run :func:`worker` in a child process; its peak RSS in MiB."""
    cmd = [sys.executable, __file__, *argv, "--workdir", str(wd), "--worker", task, model, protocol]
    p = subprocess.Popen(cmd)
    _, status, usage = os.wait4(p.pid, 0)
    if (rc := os.waitstatus_to_exitcode(status)) != 0:
        raise SystemExit(f"{task} {model}: the training process failed (exit {rc}); see its log above")
    return usage.ru_maxrss / 1024


def oracle_rows(task: str, table: pd.DataFrame) -> list[dict]:
    """The oracle scored like a model: per-fold and pooled metrics of its noiseless value."""
    rows = []
    cols = {"oracle": "oracle (noiseless)", "oracle_promoter": "oracle, promoter term only"}
    for col, name in cols.items():
        if col not in table:
            continue
        for fold in FOLDS:
            g = table[table.split == held_out_split(fold)]
            rows.append({"task": task, "model": name, "fold": fold,
                         **task_metrics(g[col].to_numpy(), g.label.to_numpy(), task)})
    return rows


def summarise(per_fold: pd.DataFrame, extra: dict) -> pd.DataFrame:
    """Mean and sd over folds per (task, model) of the task's main metrics, with params, time and memory."""
    rows = []
    for (task, model), g in per_fold.groupby(["task", "model"], sort=False):
        row = {"task": task, "model": model}
        for k in METRICS[task]:
            row[f"mean_{k}"], row[f"sd_{k}"] = g[k].mean(), g[k].std(ddof=1)
        rows.append({**row, **extra.get((task, model), {})})
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--span-mb", type=float, default=60.0, help="read-level simulation span (clf, reg)")
    p.add_argument("--pair-genes", type=int, default=600, help="genes in the simulated pair of cells (diff)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=2e-4, help="Chromoformer-protocol learning rate")
    p.add_argument("--seed", type=int, default=123, help="training seed (the config's default)")
    p.add_argument("--pair-seed", type=int, default=1, help="seed of the simulated pair of cells")
    p.add_argument("--tasks", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--protocols", nargs="+", default=["original", "chromoformer"], choices=["original", "chromoformer"],
                   help="protocols to train each baseline with a recorded original recipe under")
    p.add_argument("--models", nargs="+", default=None, help="train only these models (default: every model of "
                   "each task); finished folds in the work dir are read back, not retrained")
    p.add_argument("--workdir", default=None)
    p.add_argument("--worker", nargs=3, metavar=("TASK", "MODEL", "PROTOCOL"), help=argparse.SUPPRESS)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-benchmodels-"))
    if a.worker:
        return worker(*a.worker, wd, a)
    check_workdir(wd, a)
    argv = ["--span-mb", str(a.span_mb), "--pair-genes", str(a.pair_genes), "--epochs", str(a.epochs),
            "--lr", str(a.lr), "--seed", str(a.seed), "--pair-seed", str(a.pair_seed), "--protocols", *a.protocols]
    per_fold, extra = [], {}
    for task in a.tasks:
        _, table = inputs(task, wd, a)
        for model, protocol in runs(task, a.protocols, a.models):
            t0 = time.perf_counter()
            rss = run_model(task, model, protocol, wd, argv)
            out = CompareFiles(run_dir(wd, task, model, protocol))
            row = pd.read_csv(out.table, sep="\t").iloc[0]
            name = row_name(model, protocol)
            folds = pd.read_csv(out.folds, sep="\t").assign(task=task, model=name)
            per_fold += folds.to_dict("records")
            extra[(task, name)] = {"n": int(row.n), "score_sd": float(row.score_sd), "params": int(row.params),
                                    "train_s": float(row.train_seconds),
                                    "wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mib": round(rss),
                                    "protocol": row.protocol}
        per_fold += oracle_rows(task, table)
    per_fold = pd.DataFrame(per_fold)
    summary = summarise(per_fold, extra)
    write_table(per_fold, wd / "benchmark_folds.tsv", sep="\t", float_format="%.4f")
    write_table(summary, wd / "benchmark.tsv", sep="\t", float_format="%.4f")
    for task in a.tasks:
        g = per_fold[per_fold.task == task][["model", "fold", *METRICS[task]]]
        models = g[~g.model.str.startswith("oracle")]
        ref = {k: g.loc[g.model == "oracle (noiseless)", k].mean() for k in METRICS[task]}
        comparison_plot(models, wd / f"benchmark_{task}.png", reference=ref,
                        title=f"{task}: held-out, 4 chromosome folds (dashed: oracle)")
    print(f"\nwork dir {wd}; {a.epochs} epochs, Chromoformer-protocol lr {a.lr:g}, seed {a.seed}; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    for task in a.tasks:
        t = summary[summary.task == task].dropna(axis=1, how="all").drop(columns=["task", "protocol"])
        for c in ("n", "params", "peak_rss_mib"):
            t[c] = t[c].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
        print(f"{task}:\n{t.to_string(index=False, float_format=lambda v: f'{v:.3f}', na_rep='')}\n")
    for (task, model), e in extra.items():
        print(f"{task} {model}: {e['protocol']}")
    print(json.dumps({"outputs": [str(wd / "benchmark.tsv"), str(wd / "benchmark_folds.tsv")]}))


if __name__ == "__main__":
    main()
