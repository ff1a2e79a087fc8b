"""Evaluation metrics (fractions in [0, 1], not the original's x100 scale)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score


def classification_metrics(p1: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """``p1``: softmax P(class 1), (N,); ``label``: 0/1, (N,). AUROC/AP are NaN with one class."""
    label = np.asarray(label).astype(int)
    out = {"accuracy": float(np.mean((p1 >= 0.5).astype(int) == label)) if len(label) else math.nan}
    if len(np.unique(label)) == 2:
        out["auroc"] = float(roc_auc_score(label, p1))
        out["ap"] = float(average_precision_score(label, p1))
    else:
        out["auroc"] = out["ap"] = math.nan
    return out


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Pearson r, Spearman rho and R^2 of (N,) predictions against (N,) targets."""
    pred, target = np.asarray(pred, dtype=np.float64).ravel(), np.asarray(target, dtype=np.float64).ravel()
    if len(pred) < 2 or np.std(pred) == 0 or np.std(target) == 0:
        r = rho = math.nan
    else:
        r = float(stats.pearsonr(pred, target)[0])
        rho = float(stats.spearmanr(pred, target)[0])
    r2 = float(r2_score(target, pred)) if len(pred) >= 2 else math.nan
    return {"pearson": r, "spearman": rho, "r2": r2}


DIFF_THRESHOLD = 1.0  # |log2 fold change| of an up/down call: two-fold


def diff_call(lfc: np.ndarray, threshold: float = DIFF_THRESHOLD) -> np.ndarray:
    """+1 (up in B), -1 (down in B) or 0 (unchanged) per gene: ``|lfc| >= threshold``."""
    lfc = np.asarray(lfc)
    return np.where(lfc >= threshold, 1, np.where(lfc <= -threshold, -1, 0))


def diff_metrics(pred: np.ndarray, target: np.ndarray, threshold: float = DIFF_THRESHOLD) -> dict[str, float]:
    """The differential task's metrics of (N,) predicted against (N,) observed log2 fold changes.

    Pearson r, Spearman rho and R^2 of the fold change, and ``call_auroc``: the AUROC of the predicted
    fold change separating the genes observed up (``lfc >= threshold``) from those observed down
    (``<= -threshold``); unchanged genes take no part. ``n_up``/``n_down`` count them (NaN AUROC when
    either is 0).
    """
    call = diff_call(target, threshold)
    moved = call != 0
    up = (call[moved] == 1).astype(int)
    auroc = float(roc_auc_score(up, np.asarray(pred)[moved])) if len(np.unique(up)) == 2 else math.nan
    return {**regression_metrics(pred, target), "call_auroc": auroc, "n_up": int(np.sum(call == 1)),
            "n_down": int(np.sum(call == -1))}


def task_metrics(pred: np.ndarray, target: np.ndarray, task: str) -> dict[str, float]:
    """The metrics of ``task``: (N,) scores (P(class 1), a value or a fold change) against (N,) targets."""
    fn = {"clf": classification_metrics, "reg": regression_metrics, "diff": diff_metrics}[task]
    return fn(pred, target)


def main_metric(task: str) -> str:
    """The metric that picks the best checkpoint (higher is better): AUROC, R^2, or for the fold change its
    Pearson r (DeepDiff's choice)."""
    return {"clf": "auroc", "reg": "r2", "diff": "pearson"}[task]
