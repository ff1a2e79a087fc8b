"""``chromoformer compare``: the paper's model comparison on any dataset, in one run.

Trains each model on the same folds with the same seed and config, then reports held-out
performance from each fold's last epoch (no model selection on the held-out fold):
mean per-fold and pooled AUROC (classification) or Pearson r (regression). Models:
``chromoformer``, ``chromoformer-nopcre`` (pCREs hidden), ``chromoformer-<b>`` (single
resolution ``b``), ``deepchrome``, ``attentivechrome``, ``hmcrnn``, ``gcmerge``. The table's
``protocol`` column says how each was trained (``spec.protocol``: a baseline's own recipe or
Chromoformer's).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import ARCHS
from chromoformer.data.folds import FOLDS
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.errors import ConfigError, UsageError
from chromoformer.files.io import not_an_input, write_table
from chromoformer.files.layouts import CompareFiles, RunPaths
from chromoformer.metrics import classification_metrics, regression_metrics
from chromoformer.spec import RunSpec
from chromoformer.training import objective
from chromoformer.training.fit import train_fold

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
        run = RunPaths.from_output(CompareFiles(out).run(name, fold))
        train_fold(model_spec(name, spec), meta, signal, fold, run.run_dir, resume=True, **fit)
        ck = read_checkpoint(run.last)
        frames.append(pd.DataFrame({"gene_id": ck["val_gene_ids"], "fold": fold, "label": ck["val_label"],
                                    "score": ck["val_score"]}))
    return pd.concat(frames, ignore_index=True)


def compare(meta: str | Path, signal: str | Path, out: str | Path, *, models: Sequence[str] = DEFAULT_MODELS,
            folds: Sequence[int] = FOLDS, spec: RunSpec | None = None, **fit: object) -> pd.DataFrame:
    """Train each of ``models`` on ``folds`` with ``spec`` (its task decides the metric) and tabulate
    held-out performance; also written to ``out/comparison.tsv``. ``fit``: see
    :func:`chromoformer.training.fit.fit_fold`."""
    out, spec = Path(out), spec or RunSpec()
    not_an_input(out, [meta], folders=[signal, fit.get("store")])
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
                     f"pooled_{key}": fn(oof.score.to_numpy(), oof.label.to_numpy())[key], "n": len(oof),
                     "protocol": objective.describe(model_spec(name, spec))})
    table = pd.DataFrame(rows)
    write_table(table, CompareFiles(out).table, sep="\t", float_format="%.4f")
    return table
