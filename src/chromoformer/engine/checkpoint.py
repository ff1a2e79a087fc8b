"""The checkpoint format, owned here: every key named once (:class:`Key`), payloads assembled, read and written.

Nothing else spells a checkpoint key (``tests/test_architecture.py`` enforces it): the trainer hands this module
an :class:`EpochRecord`, readers go through :func:`read_checkpoint`, :func:`stored_metrics` and :func:`held_out_of`,
and :mod:`chromoformer.engine.loading` turns a read checkpoint into a model.

The original checkpoints (docs/original.md §2) are dicts with ``net``, ``optimizer``, ``epoch``, ``last_val_loss``,
``last_val_auc``/``last_val_r2``, ``val_score`` and ``val_label``; the last two are numpy arrays. They are loaded
with ``torch.load(weights_only=True)`` and an allow-list of exactly the numpy types needed to rebuild plain arrays,
so a checkpoint carrying any other pickled object is refused rather than executed. Checkpoints written here add
``config``, ``binsizes``, ``task``, the scheduler state and the rest of :class:`Key`.

:func:`stored_metrics`: the numbers a checkpoint stores beside its weights, checked on read like the weights are.

``inspect`` prints them and ``verify`` recomputes them; a field of the wrong type (an AUC of ``'high'``, a text
``val_score``, labels {0, 2}, a fold of ``'abc'``) is a :class:`CheckpointError` naming the file and the field,
never a traceback. Absent fields (and ``None``) are absent: the original format stores fewer of them.
"""

from __future__ import annotations

import json
import math
import numbers
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chromoformer import __version__
from chromoformer.errors import CheckpointError
from chromoformer.files.atomic import atomic_write
from chromoformer.files.checked import require_file
from chromoformer.spec import RunSpec


def _numpy_safe_globals() -> list:
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    out: list = [
        np.ndarray,
        np.dtype,
        reconstruct,
        scalar,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (scalar, "numpy.core.multiarray.scalar"),
    ]
    for t in (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64):
        out.append(type(np.dtype(t)))
    return out


class Key:
    """Every key a checkpoint holds, named once (the original format's seven, then ours)."""

    NET = "net"  # the state dict (the original's)
    OPTIMIZER = "optimizer"
    EPOCH = "epoch"
    LAST_VAL_LOSS = "last_val_loss"
    LAST_VAL_AUC = "last_val_auc"  # x 100, as the original stores it
    LAST_VAL_R2 = "last_val_r2"
    VAL_SCORE = "val_score"
    VAL_LABEL = "val_label"
    LAST_VAL_PEARSON = "last_val_pearson"  # ours from here on
    SCHEDULER = "scheduler"
    RNG_STATE = "rng_state"
    VAL_GENE_IDS = "val_gene_ids"
    VAL_EXPR = "val_expr"  # a two-cell model's predicted log2(RPKM + 1) of each cell
    FOLD = "fold"
    BEST_SCORE = "best_score"
    BEST_EPOCH = "best_epoch"
    HISTORY = "history"
    VERSION = "chromoformer_version"
    DATA = "data"
    SPEC = "spec"  # the run spec, then its fields again under the keys earlier versions read
    CONFIG = "config"
    BINSIZES = "binsizes"
    TASK = "task"
    ARCH = "arch"
    MARKS = "marks"
    PRECISION = "train_precision"  # the arithmetic training ran in (chromoformer.engine.precision); fp32 when absent
    GRAD_SCALER = "grad_scaler"  # fp16 training's loss-scale state


SPEC_KEYS = (Key.SPEC, Key.CONFIG, Key.BINSIZES, Key.TASK, Key.ARCH, Key.MARKS)
PROVENANCE_KEYS = (Key.EPOCH, Key.FOLD, Key.VERSION, Key.DATA)  # where a checkpoint came from
STORED_KEYS = (*SPEC_KEYS, *PROVENANCE_KEYS)  # what a weights-only export keeps beside the weights
RESUME_KEYS = (Key.OPTIMIZER, Key.SCHEDULER, Key.RNG_STATE, Key.GRAD_SCALER)  # only a resumed run reads these
WEIGHT_KEYS = (Key.NET, Key.OPTIMIZER)  # the entries a loaded model does not keep beside its weights
STORED_METRIC = {"clf": Key.LAST_VAL_AUC, "reg": Key.LAST_VAL_R2, "diff": Key.LAST_VAL_PEARSON}  # x 100


def spec_fields(spec: RunSpec) -> dict[str, Any]:
    """The :data:`SPEC_KEYS` entries of a checkpoint: the spec, and its fields under the older keys."""
    return {Key.SPEC: spec.to_dict(), Key.CONFIG: spec.config.to_dict(), Key.BINSIZES: list(spec.binsizes),
            Key.TASK: spec.task, Key.ARCH: spec.arch, Key.MARKS: list(spec.marks)}


@dataclass
class EpochRecord:
    """What one epoch of training commits, by name; :meth:`payload` spells the checkpoint.

    ``val_score``: (n_val,) held-out scores (the positive-class logit difference, or the regression value);
    ``val_expr``: (n_val, 2) each cell's predicted expression for a two-cell model, else None;
    ``val_metric``: the task's main held-out metric (stored x 100 under :data:`STORED_METRIC`).
    """

    spec: RunSpec
    fold: int
    epoch: int
    net: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    val_loss: float
    val_metric: float
    val_score: np.ndarray
    val_label: np.ndarray
    val_gene_ids: list[str]
    best_score: float
    best_epoch: int
    history: list[dict]
    data: dict[str, Any]
    val_expr: np.ndarray | None = None
    precision: str = "fp32"
    grad_scaler: dict[str, Any] | None = None
    rng_state: torch.Tensor = field(default_factory=torch.get_rng_state)

    def payload(self) -> dict[str, Any]:
        pair = {} if self.val_expr is None else {Key.VAL_EXPR: self.val_expr.astype(np.float32)}
        pair |= {} if self.grad_scaler is None else {Key.GRAD_SCALER: self.grad_scaler}
        return {
            Key.NET: self.net, Key.OPTIMIZER: self.optimizer, Key.SCHEDULER: self.scheduler, Key.EPOCH: self.epoch,
            Key.LAST_VAL_LOSS: torch.tensor(self.val_loss), STORED_METRIC[self.spec.task]: 100.0 * self.val_metric,
            Key.VAL_SCORE: self.val_score.astype(np.float32), Key.VAL_LABEL: self.val_label,
            Key.VAL_GENE_IDS: list(self.val_gene_ids), **pair, **spec_fields(self.spec), Key.FOLD: self.fold,
            Key.BEST_SCORE: self.best_score, Key.BEST_EPOCH: self.best_epoch, Key.HISTORY: list(self.history),
            Key.RNG_STATE: self.rng_state, Key.VERSION: __version__, Key.DATA: self.data,
            Key.PRECISION: self.precision,
        }


def without_resume_state(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload without what only resuming reads (optimizer, scheduler, RNG state): a ``best.pt`` to share."""
    return {k: v for k, v in payload.items() if k not in RESUME_KEYS}


def space_estimate(net: dict[str, torch.Tensor], n_val: int) -> int:
    """Bytes one checkpoint of these weights (and Adam's two moments) and ``n_val`` held-out genes takes."""
    moments = [v for v in net.values() if v.is_floating_point()] * 2
    return checkpoint_nbytes({Key.NET: net, Key.OPTIMIZER: moments, Key.VAL_SCORE: np.zeros(2 * n_val, np.float32)})


@dataclass(frozen=True)
class HeldOut:
    """A checkpoint's held-out genes: ids, labels (or targets), scores, each cell's expression (two-cell models)
    and the seconds its epochs took."""

    gene_ids: list[str]
    labels: np.ndarray
    scores: np.ndarray
    expr: np.ndarray | None
    seconds: float


def held_out_of(ck: dict[str, Any]) -> HeldOut:
    """The held-out predictions a checkpoint of ours stores (``val_predictions.csv`` and ``compare`` read them)."""
    expr = ck.get(Key.VAL_EXPR)
    return HeldOut(list(ck[Key.VAL_GENE_IDS]), np.asarray(ck[Key.VAL_LABEL]), np.asarray(ck[Key.VAL_SCORE]),
                   None if expr is None else np.asarray(expr),
                   sum(float(h.get("seconds", 0.0)) for h in ck.get(Key.HISTORY, [])))


def _read_safetensors(path: Path) -> dict[str, Any]:
    """A weights-only export (:func:`export_weights`): the state dict plus the run spec in its metadata."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package "
                              "(pip install safetensors)") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            net = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        spec = {k: json.loads(v) for k, v in meta.items() if k in STORED_KEYS}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({' '.join(str(e).split())[:200]})") from None
    return {Key.NET: net, **spec}


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` plus the numpy allow-list; errors name the file.

    A ``.safetensors`` file written by :func:`export_weights` is read too.
    """
    path = require_file(path, "checkpoint", CheckpointError)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if path.suffix == ".safetensors":
        obj = _read_safetensors(path)
        return _checked(obj, path)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL (\S+)", str(e))
        if m is None:
            raise CheckpointError(f"{path}: not a torch checkpoint (unrecognised or corrupt content)") from None
        raise CheckpointError(
            f"{path}: refused to load: it contains pickled global {m.group(1)}, not only tensors, numbers and "
            "numpy arrays"
        ) from None
    except Exception as e:  # noqa: BLE001 - the unpickler raises anything (IndexError on text, KeyError...)
        first = (str(e).splitlines() or ["truncated"])[0] or "truncated"
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {first})") from None
    if isinstance(obj, dict) and Key.NET not in obj and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = {Key.NET: obj}  # a bare state_dict
    return _checked(obj, path)


def _checked(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get(Key.NET), dict):
        raise CheckpointError(f"{path}: expected a dict with a 'net' state_dict")
    for k, v in obj[Key.NET].items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{path}: net[{k!r}] is a {type(v).__name__}, not a tensor")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: weight {k} contains NaN or infinite values (diverged or corrupt "
                                  "training); use an earlier checkpoint")
    return obj


def checkpoint_nbytes(payload: dict[str, Any]) -> int:
    """About the size ``payload`` takes on disk (its tensors, plus 1 MB for the rest)."""
    total = 0
    stack: list[Any] = [payload]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, np.ndarray):
            total += v.nbytes
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return total + 2**20


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` atomically (temp file, fsync, rename); checks the free space first."""
    atomic_write(path, lambda f: torch.save(payload, f), size_hint=checkpoint_nbytes(payload))


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
    return a.reshape(len(a), -1)[:, -1] if key == Key.VAL_SCORE else a.ravel()


def stored_metrics(ck: dict[str, Any], path: str | Path, task: str) -> StoredMetrics:
    """Check and convert the stored fields of checkpoint ``ck`` (a ``task`` model); see the module docstring."""
    path = Path(path)
    m = StoredMetrics(
        epoch=_integer(ck, Key.EPOCH, path, 0), fold=_integer(ck, Key.FOLD, path, 0, 4),
        best_epoch=_integer(ck, Key.BEST_EPOCH, path, 0), last_val_auc=_real(ck, Key.LAST_VAL_AUC, path),
        last_val_r2=_real(ck, Key.LAST_VAL_R2, path), last_val_pearson=_real(ck, Key.LAST_VAL_PEARSON, path),
        last_val_loss=_real(ck, Key.LAST_VAL_LOSS, path),
        val_score=_array(ck, Key.VAL_SCORE, path), val_label=_array(ck, Key.VAL_LABEL, path))
    if m.val_score is not None and m.val_label is not None and len(m.val_score) != len(m.val_label):
        raise CheckpointError(f"{path}: val_score has {len(m.val_score)} values and val_label {len(m.val_label)}")
    ids = ck.get(Key.VAL_GENE_IDS)
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
    expr = ck.get(Key.VAL_EXPR)
    if expr is not None:
        a = np.asarray(expr)
        if a.dtype.kind not in "biuf" or a.shape != (len(m.val_score if m.val_score is not None else a), 2) or \
                not np.isfinite(a).all():
            raise CheckpointError(f"{path}: stored val_expr must be finite numbers, two per val_score (each cell's "
                                  f"predicted expression), got {a.dtype} {a.shape}")
    if m.last_val_auc is not None and not (math.isnan(m.last_val_auc) or 0 <= m.last_val_auc <= 100):
        raise CheckpointError(f"{path}: stored last_val_auc {m.last_val_auc} is not an AUROC x 100 in [0, 100]")
    return m
