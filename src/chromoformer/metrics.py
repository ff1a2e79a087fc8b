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


def main_metric(task: str) -> str:
    """The metric that picks the best checkpoint (higher is better)."""
    return "auroc" if task == "clf" else "r2"
