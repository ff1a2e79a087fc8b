"""The numbers a checkpoint stores beside its weights, checked on read like the weights are.

``inspect`` prints them and ``verify`` recomputes them; a field of the wrong type (an AUC of
``'high'``, a text ``val_score``, labels {0, 2}, a fold of ``'abc'``) is a
:class:`CheckpointError` naming the file and the field, never a traceback. Absent fields
(and ``None``) are absent: the original format stores fewer of them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chromoformer.errors import CheckpointError


@dataclass(frozen=True)
class StoredMetrics:
    """Typed view of a checkpoint's stored fields; None where not stored.

    ``val_score``: (N,) float64 (the last column of an (N, k) array); ``val_label``: (N,) float64.
    """

    epoch: int | None
    fold: int | None
    best_epoch: int | None
    last_val_auc: float | None
    last_val_r2: float | None
    last_val_pearson: float | None
    last_val_loss: float | None
    val_score: np.ndarray | None
    val_label: np.ndarray | None


def _scalar(v: Any) -> Any:
    """A Python number from a number, a numpy scalar or a one-element tensor/array; else ``v`` itself."""
    if isinstance(v, torch.Tensor) and v.numel() == 1 or isinstance(v, np.ndarray) and v.size == 1:
        return v.item()
    return v.item() if isinstance(v, np.generic) else v


def _integer(ck: dict, key: str, path: Path, lo: int, hi: int | None = None) -> int | None:
    v = _scalar(ck.get(key))
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo or (hi is not None and v > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise CheckpointError(f"{path}: stored {key} {ck[key]!r} is not an integer {rng} (the file was edited "
                              "or is corrupt)")
    return int(v)


def _real(ck: dict, key: str, path: Path) -> float | None:
    v = _scalar(ck.get(key))
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise CheckpointError(f"{path}: stored {key} {ck[key]!r} is not a number (the file was edited or is corrupt)")
    return float(v)


def _array(ck: dict, key: str, path: Path) -> np.ndarray | None:
    v = ck.get(key)
    if v is None:
        return None
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    a = np.asarray(v) if isinstance(v, np.ndarray | list | tuple) else None
    if a is None or a.dtype.kind not in "biuf" or a.ndim not in (1, 2) or not a.size:
        shown = type(v).__name__ if a is None else f"{a.dtype} array of shape {a.shape}"
        raise CheckpointError(f"{path}: stored {key} is a {shown}, not a non-empty 1-D (or N x k) array of numbers")
    a = a.astype(np.float64)
    return a.reshape(len(a), -1)[:, -1] if key == "val_score" else a.ravel()


def stored_metrics(ck: dict[str, Any], path: str | Path, task: str) -> StoredMetrics:
    """Check and convert the stored fields of checkpoint ``ck`` (a ``task`` model); see the module docstring."""
    path = Path(path)
    m = StoredMetrics(
        epoch=_integer(ck, "epoch", path, 0), fold=_integer(ck, "fold", path, 0, 4),
        best_epoch=_integer(ck, "best_epoch", path, 0), last_val_auc=_real(ck, "last_val_auc", path),
        last_val_r2=_real(ck, "last_val_r2", path), last_val_pearson=_real(ck, "last_val_pearson", path),
        last_val_loss=_real(ck, "last_val_loss", path),
        val_score=_array(ck, "val_score", path), val_label=_array(ck, "val_label", path))
    if m.val_score is not None and m.val_label is not None and len(m.val_score) != len(m.val_label):
        raise CheckpointError(f"{path}: val_score has {len(m.val_score)} values and val_label {len(m.val_label)}")
    ids = ck.get("val_gene_ids")
    if ids is not None and (not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids)
                            or (m.val_score is not None and len(ids) != len(m.val_score))):
        raise CheckpointError(f"{path}: stored val_gene_ids is not a list of gene ids, one per val_score")
    if m.val_score is not None and not np.isfinite(m.val_score).all():
        raise CheckpointError(f"{path}: val_score holds NaN or inf")
    if m.val_label is not None:
        if task == "clf" and not np.isin(m.val_label, (0, 1)).all():
            bad = sorted(set(m.val_label[~np.isin(m.val_label, (0, 1))].tolist()))[:3]
            raise CheckpointError(f"{path}: val_label of a classifier must be 0 or 1, found {bad}")
        if not np.isfinite(m.val_label).all():
            raise CheckpointError(f"{path}: val_label holds NaN or inf")
    expr = ck.get("val_expr")
    if expr is not None:
        a = np.asarray(expr)
        if a.dtype.kind not in "biuf" or a.shape != (len(m.val_score if m.val_score is not None else a), 2) or \
                not np.isfinite(a).all():
            raise CheckpointError(f"{path}: stored val_expr must be finite numbers, two per val_score (each cell's "
                                  f"predicted expression), got {a.dtype} {a.shape}")
    if m.last_val_auc is not None and not (math.isnan(m.last_val_auc) or 0 <= m.last_val_auc <= 100):
        raise CheckpointError(f"{path}: stored last_val_auc {m.last_val_auc} is not an AUROC x 100 in [0, 100]")
    return m
