"""``chromoformer compare``: the paper's model comparison on any dataset, in one run.

Trains each model on the same folds with the same seed and config, then reports held-out
performance from each fold's last epoch (no model selection on the held-out fold):
mean per-fold and pooled AUROC (classification) or Pearson r (regression). Models:
``chromoformer``, ``chromoformer-nopcre`` (pCREs hidden), ``chromoformer-<b>`` (single
resolution ``b``), ``deepchrome``, ``attentivechrome``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer import train
from chromoformer.checkpoint import read_checkpoint
from chromoformer.data import read_metadata
from chromoformer.io import write_table
from chromoformer.metrics import classification_metrics, regression_metrics

log = logging.getLogger(__name__)
DEFAULT_MODELS = ("chromoformer", "chromoformer-nopcre", "chromoformer-100", "deepchrome", "attentivechrome")


def model_args(name: str) -> list[str]:
    """Model name -> train flags."""
    if name.startswith("chromoformer-") and name.split("-", 1)[1].isdigit():
        return ["--model", "chromoformer", "--binsizes", name.split("-", 1)[1]]
    return ["--model", name]


def out_of_fold(meta: str | Path, npy: str | Path, out: Path, name: str, folds: Sequence[int], extra: list[str],
                regression: bool) -> pd.DataFrame:
    """Train ``name`` on every fold (resuming finished ones); its held-out gene_id, fold, label, score."""
    genes = read_metadata(meta)
    frames = []
    for fold in folds:
        run = out / name / f"fold{fold}"
        argv = ["-m", str(meta), "-d", str(npy), "--fold", str(fold), "-o", str(run), "--resume",
                *model_args(name), *extra, *(["--regression"] if regression else [])]
        train.run(train.build_parser().parse_args(argv))
        ck = read_checkpoint(run / "last.pt")
        held = [g.gene_id for g in train.split_genes(genes, fold)[1]]  # the validation order of the run
        frames.append(pd.DataFrame({"gene_id": held, "fold": fold, "label": ck["val_label"], "score": ck["val_score"]}))
    return pd.concat(frames, ignore_index=True)


def compare(meta: str | Path, npy: str | Path, out: str | Path, models: Sequence[str] = DEFAULT_MODELS,
            folds: Sequence[int] = (1, 2, 3, 4), extra: Sequence[str] = (), regression: bool = False) -> pd.DataFrame:
    out = Path(out)
    key = "pearson" if regression else "auroc"
    fn = regression_metrics if regression else classification_metrics
    rows = []
    for name in models:
        oof = out_of_fold(meta, npy, out, name, folds, list(extra), regression)
        per = [fn(g.score.to_numpy(), g.label.to_numpy())[key] for _, g in oof.groupby("fold")]
        rows.append({"model": name, f"mean_fold_{key}": float(np.mean(per)),
                     f"pooled_{key}": fn(oof.score.to_numpy(), oof.label.to_numpy())[key], "n": len(oof)})
    table = pd.DataFrame(rows)
    write_table(table, out / "comparison.tsv", sep="\t", float_format="%.4f")
    return table


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer compare", description=__doc__)
    p.add_argument("-m", "--meta", required=True, help="metadata csv")
    p.add_argument("-d", "--npy-dir", required=True, help="npy directory or binned store")
    p.add_argument("-o", "--out", required=True, help="directory for all runs and comparison.tsv")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
        help="architectures to train (see train --model)")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 2, 3, 4], help="folds to train (1..4)")
    p.add_argument("--regression", action="store_true", help="regress log2(RPKM+1) instead of classifying")
    p.add_argument("--epochs", type=int, default=None, help="override num_epoch of the config")
    p.add_argument("-c", "--config", default=None, help="config YAML (default: packaged)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    return p


def run(args: argparse.Namespace) -> None:
    extra = ["--num-workers", str(args.num_workers)]
    extra += ["--epochs", str(args.epochs)] if args.epochs else []
    extra += ["-c", args.config] if args.config else []
    t = compare(args.meta, args.npy_dir, args.out, args.models, args.folds, extra, args.regression)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
