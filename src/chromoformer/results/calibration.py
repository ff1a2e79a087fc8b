"""Calibration of a classifier's P(expressed): reliability, expected calibration error, temperature.

For two classes, softmax P(class 1) = sigmoid(m) with the margin m = logit_1 - logit_0, so
the margin is recovered exactly from a stored probability (``margin``) and temperature
scaling is P_T = sigmoid(m / T): T > 1 softens over-confident predictions, T < 1 sharpens
them, and the ranking (AUROC, AP) never changes.

* ECE: predictions in ``n_bins`` equal-width bins of P(class 1); the sum over bins of
  (genes in the bin / all genes) x |mean P(class 1) - fraction of expressed genes|.
* ``fit_temperature``: the T minimising the cross-entropy of held-out predictions.
* ``cross_fitted``: each fold's predictions scaled by the T fitted on the *other* folds, so
  the ECE after scaling is measured on genes the fit never saw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from chromoformer.errors import EvaluationError, UsageError
from chromoformer.files.atomic import write_text
from chromoformer.inference.predict import check_temperature

EPS = 1e-7  # probabilities are stored as float32: clip before the logit


def margin(p: np.ndarray) -> np.ndarray:
    """(N,) P(class 1) -> (N,) logit_1 - logit_0."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def scale(p: np.ndarray, temperature: float) -> np.ndarray:
    """P(class 1) after temperature scaling, (N,) -> (N,)."""
    return 1.0 / (1.0 + np.exp(-margin(p) / temperature))


def reliability(p: np.ndarray, label: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per bin of P(class 1): ``lo, hi, n, mean_p, frac_expressed`` (empty bins have n = 0, NaN means)."""
    p, label = np.asarray(p, dtype=np.float64), np.asarray(label, dtype=np.float64)
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / n
        frac = np.bincount(idx, weights=label, minlength=n_bins) / n
    edges = np.linspace(0, 1, n_bins + 1)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "n": n, "mean_p": mean_p, "frac_expressed": frac})


def ece(p: np.ndarray, label: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error (see module docstring); NaN for no predictions."""
    t = reliability(p, label, n_bins)
    if t.n.sum() == 0:
        return math.nan
    used = t[t.n > 0]
    return float((used.n * (used.mean_p - used.frac_expressed).abs()).sum() / t.n.sum())


def fit_temperature(p: np.ndarray, label: np.ndarray) -> float:
    """The temperature in [1/50, 50] minimising the mean cross-entropy of ``sigmoid(margin(p) / T)``."""
    m, y = margin(p), np.asarray(label, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise EvaluationError(f"fitting a temperature needs both classes; the {len(y)} predictions hold one")

    def nll(log_t: float) -> float:
        z = m / math.exp(log_t)
        return float(np.mean(np.logaddexp(0, z) - y * z))  # -log sigmoid(z) for y=1, -log(1-sigmoid(z)) for y=0

    r = minimize_scalar(nll, bounds=(-math.log(50), math.log(50)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(r.x))


def cross_fitted(df: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """``df`` (fold, score, label) -> (scores scaled by the other folds' temperature, T per fold)."""
    out = np.empty(len(df))
    temps = {}
    for f in df.fold.unique():
        mine = (df.fold == f).to_numpy()
        t = fit_temperature(df.score[~mine], df.label[~mine])
        out[mine], temps[str(f)] = scale(df.score[mine], t), t
    return out, temps


def save_temperature(path: str | Path, temperature: float, n: int, folds: list[str]) -> Path:
    doc = {"temperature": temperature, "fitted_on": f"{n} held-out predictions of folds {', '.join(folds)}",
           "applies_to": "classifier P(class 1) = sigmoid((logit_1 - logit_0) / temperature)"}
    write_text(path, json.dumps(doc, indent=2) + "\n")
    return Path(path)


def read_temperature(value: str | Path) -> float:
    """A temperature given as a number or as the ``temperature.json`` that ``evaluate`` writes."""
    what = "--temperature"
    try:
        t = float(str(value))
    except ValueError:
        what = f"{value}: temperature"
        p = Path(value)
        if not p.is_file():
            raise UsageError(f"--temperature {value}: neither a number nor a file") from None
        try:
            t = float(json.loads(p.read_text())["temperature"])
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{p}: not a temperature.json (no numeric 'temperature')") from None
    return check_temperature(t, what)
