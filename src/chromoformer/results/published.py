"""``chromoformer pretrained list`` and ``table``: what the published checkpoints are, and how well each did.

:func:`published_list` is the figshare article's checkpoints (EID, task, fold, size, md5, whether cached).
:func:`published_table` is the per-cell-type table a user compares against: for every cached checkpoint, the
validation numbers recomputed from its own stored ``val_score`` and ``val_label`` (``verify``'s first check,
no data needed), one row per EID x task x fold, and a ``pooled`` row per EID x task over the folds' validation
genes together (each fold validates on another chromosome group, so the pooled row covers the genome once).

Columns of the table: ``eid``, ``task``, ``fold`` (1-4 or ``pooled``), ``n`` (validation genes), then for a
classifier ``auroc``, ``ap``, ``loss`` (cross-entropy of the stored probabilities) and for a regressor
``pearson``, ``spearman``, ``r2``, ``loss`` (mean squared error), and ``stored`` (the checkpoint's own
``last_val_auc`` or ``last_val_r2`` / 100; NaN for the pooled rows).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chromoformer.engine.checkpoint import read_checkpoint, stored_metrics
from chromoformer.engine.pretrained import Published, catalogue
from chromoformer.files.fetch import cached
from chromoformer.metrics import task_metrics

LIST_COLUMNS = ("eid", "task", "fold", "size", "md5", "cached", "name", "archive")
KEYS = {"clf": ("auroc", "ap"), "reg": ("pearson", "spearman", "r2")}


def published_list() -> pd.DataFrame:
    """One row per published checkpoint (the listing is fetched once, then read from the cache)."""
    rows = [{"eid": p.eid, "task": p.task, "fold": p.fold, "size": p.size, "md5": p.md5, "cached": cached(p.path),
             "name": p.name, "archive": p.archive or ""} for p in catalogue()]
    return pd.DataFrame(rows, columns=list(LIST_COLUMNS))


def _loss(score: np.ndarray, label: np.ndarray, task: str) -> float:
    if task == "clf":
        p = np.clip(score, 1e-12, 1 - 1e-12)
        return float(-np.mean(np.where(label == 1, np.log(p), np.log(1 - p))))
    return float(np.mean((score - label) ** 2))


def _row(eid: str, task: str, fold: object, score: np.ndarray, label: np.ndarray, stored: float) -> dict:
    m = task_metrics(score, label, task)
    return {"eid": eid, "task": task, "fold": fold, "n": len(label), **{k: m[k] for k in KEYS[task]},
            "loss": _loss(score, label, task), "stored": stored}


def published_table(eids: list[str] | None = None) -> pd.DataFrame:
    """The table of the module docstring over the cached checkpoints (of ``eids``, default all)."""
    rows = []
    groups: dict[tuple[str, str], list[Published]] = {}
    for p in catalogue():
        if (eids is None or p.eid in eids) and cached(p.path):
            groups.setdefault((p.eid, p.task), []).append(p)
    for (eid, task), ps in groups.items():
        scores, labels = [], []
        for p in ps:
            st = stored_metrics(read_checkpoint(p.path), p.path, task)  # checked as a model when it was fetched
            if st.val_score is None or st.val_label is None:
                continue
            stored = st.last_val_auc if task == "clf" else st.last_val_r2
            rows.append(_row(eid, task, p.fold, st.val_score, st.val_label,
                             math.nan if stored is None else stored / 100))
            scores.append(st.val_score)
            labels.append(st.val_label)
        if len(scores) > 1:
            rows.append(_row(eid, task, "pooled", np.concatenate(scores), np.concatenate(labels), math.nan))
    cols = ["eid", "task", "fold", "n", *KEYS["clf"], *KEYS["reg"], "loss", "stored"]
    return pd.DataFrame(rows, columns=cols)
