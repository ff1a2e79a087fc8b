"""``chromoformer compare``: the paper's model comparison on any dataset, in one run.

Trains each model on the same folds with the same seed and config, then reports held-out
performance from each fold's last epoch (no model selection on the held-out fold): mean and
sd over folds and pooled AUROC (classification), Pearson r (regression), or for the differential
task Pearson r, Spearman rho and the up/down AUROC of the fold change. Models: ``chromoformer``,
``chromoformer-nopcre`` (pCREs hidden), ``chromoformer-<b>`` (single resolution ``b``),
``deepchrome``, ``attentivechrome``, ``hmcrnn``, ``gcmerge``; for ``diff`` ``chromoformer-diff`` and
``deepdiff``. The table's ``protocol`` column says how each was trained (``spec.protocol``: a
baseline's own recipe or Chromoformer's); ``params`` and ``train_seconds`` (the folds' epochs
summed) say what it cost; ``score_sd`` is the spread of its held-out scores (a fold whose scores are all
but constant is logged: that model did not train). ``comparison_folds.tsv`` holds every fold's numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import ARCHS
from chromoformer.data.folds import FOLDS
from chromoformer.engine.checkpoint import held_out_of, read_checkpoint
from chromoformer.errors import ConfigError, UsageError
from chromoformer.files.atomic import write_table
from chromoformer.files.checked import not_an_input
from chromoformer.files.frames import beside_as_parquet
from chromoformer.files.layouts import CompareFiles, RunPaths
from chromoformer.metrics import task_metrics
from chromoformer.model import build_model
from chromoformer.spec import RunSpec
from chromoformer.training import objective
from chromoformer.training.fit import train_fold

log = logging.getLogger(__name__)
DEFAULT_MODELS = ("chromoformer", "chromoformer-nopcre", "chromoformer-100", "deepchrome", "attentivechrome")
DIFF_MODELS = ("chromoformer-diff", "deepdiff")
METRICS = {"clf": ("auroc",), "reg": ("pearson",), "diff": ("pearson", "spearman", "call_auroc")}


def model_spec(name: str, spec: RunSpec) -> RunSpec:
    """Model name -> the run spec that trains it (``chromoformer-<b>``: one resolution ``b``)."""
    if name.startswith("chromoformer-") and name.split("-", 1)[1].isdigit():
        return spec.replace(arch="chromoformer", binsizes=(int(name.split("-", 1)[1]),))
    try:
        return spec.replace(arch=name)
    except ConfigError as e:
        if name in ARCHS:  # a model that cannot take this task
            raise UsageError(str(e)) from None
        raise UsageError(f"unknown model {name!r}; choose from {', '.join((*ARCHS, 'chromoformer-<binsize>'))}"
                         ) from None


def n_params(spec: RunSpec) -> int:
    return sum(p.numel() for p in build_model(spec.task, spec.config, spec.binsizes, spec.arch).parameters())


def out_of_fold(train: Callable[..., list[dict]], inputs: Sequence[str | Path], out: Path, name: str,
                folds: Sequence[int], spec: RunSpec, **fit: object) -> tuple[pd.DataFrame, float]:
    """Train ``name`` on every fold with ``train`` (resuming finished ones); its held-out gene_id, fold, label,
    score and the seconds its epochs took. ``inputs``: (meta, signal), or for ``diff`` (meta A, signal A, meta B,
    signal B), passed to ``train`` before the fold."""
    frames, seconds = [], 0.0
    for fold in folds:
        run = RunPaths.from_output(CompareFiles(out).run(name, fold))
        # one cache store per signal (and base resolution) for every model, under the comparison's folder
        train(model_spec(name, spec), *inputs, fold, run.run_dir, resume=True, store_root=out, **fit)
        held_out = held_out_of(read_checkpoint(run.last))
        seconds += held_out.seconds
        frames.append(pd.DataFrame({"gene_id": held_out.gene_ids, "fold": fold, "label": held_out.labels,
                                    "score": held_out.scores}))
    return pd.concat(frames, ignore_index=True), seconds


FLAT = 1e-3  # held-out scores spread less than this fraction of the targets' spread: the model did not train


def check_spread(name: str, oof: pd.DataFrame) -> tuple[float, bool]:
    """The sd of ``name``'s held-out scores and whether it trained (two columns of the table): a fold whose
    scores are (nearly) one value is a model that did not train, since its metrics rank noise (logged too)."""
    trained = True
    for fold, g in oof.groupby("fold"):
        sd, target_sd = float(g.score.std(ddof=0)), float(g.label.std(ddof=0))
        if sd <= FLAT * max(target_sd, 1e-12):
            trained = False
            log.warning("%s fold %s: its held-out scores are all but constant (sd %.2g against the targets' %.2g): "
                        "the model did not train, and its metrics there rank noise; give it more epochs or a "
                        "higher lr (or its own protocol)", name, fold, sd, target_sd)
    return float(oof.score.std(ddof=0)), trained


def compare(meta: str | Path, signal: str | Path, out: str | Path, *, models: Sequence[str] | None = None,
            folds: Sequence[int] = FOLDS, spec: RunSpec | None = None, **fit: object) -> pd.DataFrame:
    """Train each of ``models`` on ``folds`` with ``spec`` (its task decides the metric) and tabulate
    held-out performance; also written to ``out/comparison.tsv`` (and every fold's to
    ``comparison_folds.tsv``). ``fit``: see :func:`chromoformer.training.fit.fit_fold`. The differential task
    compares with :func:`chromoformer.diff.fitting.compare_pairs`."""
    spec = spec or RunSpec()
    spec.expect_cells(1, "compare")
    return compare_models(train_fold, (meta, signal), out, models=models or DEFAULT_MODELS, folds=folds, spec=spec,
                          **fit)


def compare_models(train: Callable[..., list[dict]], inputs: Sequence[str | Path], out: str | Path, *,
                   models: Sequence[str], folds: Sequence[int], spec: RunSpec, parquet: bool = False,
                   **fit: object) -> pd.DataFrame:
    """:func:`compare` of any task: ``train(spec, *inputs, fold, run_dir, resume=True, **fit)`` trains a fold;
    ``inputs`` alternate metadata files and signal folders (one pair per cell); ``parquet``: both tables also as
    ``.parquet`` beside the tsv."""
    out = Path(out)
    not_an_input(out, inputs[0::2], folders=[*inputs[1::2], fit.get("store")])
    for name in models:
        model_spec(name, spec)  # every name is checked before the first model trains
    keys = METRICS[spec.task]
    rows, per_fold = [], []
    for name in models:
        oof, seconds = out_of_fold(train, inputs, out, name, folds, spec, **fit)
        per = {f: task_metrics(g.score.to_numpy(), g.label.to_numpy(), spec.task) for f, g in oof.groupby("fold")}
        pooled = task_metrics(oof.score.to_numpy(), oof.label.to_numpy(), spec.task)
        per_fold += [{"model": name, "fold": f, **{k: m[k] for k in keys}} for f, m in per.items()]
        row: dict = {"model": name}
        for k in keys:
            vals = [m[k] for m in per.values()]
            row[f"mean_fold_{k}"] = float(np.mean(vals))
            row[f"sd_fold_{k}"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
            row[f"pooled_{k}"] = pooled[k]
        s = model_spec(name, spec)
        spread, trained = check_spread(name, oof)
        rows.append({**row, "n": len(oof), "score_sd": spread, "trained": trained, "params": n_params(s),
                     "train_seconds": round(seconds, 1), "protocol": objective.describe(s)})
    table = pd.DataFrame(rows)
    files = CompareFiles(out)
    for df, path in ((pd.DataFrame(per_fold), files.folds), (table, files.table)):
        write_table(df, path, sep="\t", float_format="%.4f")
        if parquet:
            beside_as_parquet(df, path)
    return table
