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
from chromoformer.config import ARCHS, ChromoformerConfig, default_marks, load_config
from chromoformer.errors import ConfigError, UsageError
from chromoformer.io import write_table
from chromoformer.metrics import classification_metrics, regression_metrics
from chromoformer.spec import RunSpec, config_for_marks

log = logging.getLogger(__name__)
DEFAULT_MODELS = ("chromoformer", "chromoformer-nopcre", "chromoformer-100", "deepchrome", "attentivechrome")


def model_spec(name: str, spec: RunSpec) -> RunSpec:
    """Model name -> the run spec that trains it (``chromoformer-<b>``: one resolution ``b``)."""
    if name.startswith("chromoformer-") and name.split("-", 1)[1].isdigit():
        return spec.replace(arch="chromoformer", binsizes=(int(name.split("-", 1)[1]),))
    try:
        return spec.replace(arch=name)
    except ConfigError:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join((*ARCHS, 'chromoformer-<binsize>'))}"
                         ) from None


def out_of_fold(meta: str | Path, signal: str | Path, out: Path, name: str, folds: Sequence[int], spec: RunSpec,
                **fit: object) -> pd.DataFrame:
    """Train ``name`` on every fold (resuming finished ones); its held-out gene_id, fold, label, score."""
    frames = []
    for fold in folds:
        run = out / name / f"fold{fold}"
        train.train_fold(model_spec(name, spec), meta, signal, fold, run, resume=True, **fit)
        ck = read_checkpoint(run / "last.pt")
        frames.append(pd.DataFrame({"gene_id": ck["val_gene_ids"], "fold": fold, "label": ck["val_label"],
                                    "score": ck["val_score"]}))
    return pd.concat(frames, ignore_index=True)


def compare(meta: str | Path, signal: str | Path, out: str | Path, models: Sequence[str] = DEFAULT_MODELS,
            folds: Sequence[int] = (1, 2, 3, 4), spec: RunSpec | None = None, **fit: object) -> pd.DataFrame:
    """Train each of ``models`` on ``folds`` with ``spec`` (its task decides the metric) and tabulate
    held-out performance; also written to ``out/comparison.tsv``. ``fit``: see :func:`train.fit_fold`."""
    out, spec = Path(out), spec or RunSpec()
    for name in models:
        model_spec(name, spec)  # every name is checked before the first model trains
    regression = spec.task == "reg"
    key = "pearson" if regression else "auroc"
    fn = regression_metrics if regression else classification_metrics
    rows = []
    for name in models:
        oof = out_of_fold(meta, signal, out, name, folds, spec, **fit)
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
    cfg = load_config(args.config)
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.num_workers < 0:
        raise UsageError(f"--num-workers must be >= 0, got {args.num_workers}")
    for fold in args.folds:
        train.held_out_split(fold)
    for what, xs in (("--folds", args.folds), ("--models", args.models)):
        if len(set(xs)) != len(xs):
            raise UsageError(f"{what} lists {next(x for x in xs if xs.count(x) > 1)} twice")
    if args.epochs:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    marks = train.signal_marks(args.npy_dir) or default_marks(cfg.n_feats)
    cfg = config_for_marks(cfg, marks, from_user=args.config is not None)
    spec = RunSpec(cfg, marks=marks, task="reg" if args.regression else "clf")
    t = compare(args.meta, args.npy_dir, args.out, args.models, args.folds, spec, num_workers=args.num_workers)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
