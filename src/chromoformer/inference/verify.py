"""``chromoformer verify``: do a checkpoint's stored validation numbers hold?

Two checks per checkpoint (the original published format or ours):

1. **Stored metrics.** AUROC (clf) or R^2 (reg) recomputed from the stored ``val_score`` and
   ``val_label`` must equal ``last_val_auc`` / ``last_val_r2`` (stored x100), and the
   cross-entropy (clf) or mean squared error (reg, ours only: the original's is
   mis-computed, docs/original.md §4) must equal ``last_val_loss``, within ``metric_tol``. Both are
   computed over the whole validation set, as the original's ``train.py`` does. AP,
   accuracy, Pearson r and Spearman rho are printed beside them for information.
2. **Re-prediction** (given metadata and signals). The fold's validation genes are predicted
   again and compared with ``val_score`` (max absolute difference within ``score_tol``).
   Gene order: ``val_gene_ids`` where the checkpoint has them; otherwise the order of the
   metadata, or the original ``train.py``'s (metadata shuffled with seed 123), whichever
   reproduces ``val_label``; the order used is reported.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chromoformer.engine.checkpoint import STORED_METRIC, Key
from chromoformer.engine.loading import load_model
from chromoformer.engine.runtime import DEFAULT_RUNTIME, Runtime
from chromoformer.errors import CheckpointError, UsageError
from chromoformer.metrics import classification_metrics, regression_metrics
from chromoformer.training.objective import FOCAL_GAMMA, loss_kind

log = logging.getLogger(__name__)
ORIGINAL_SHUFFLE_SEED = 123  # train.py: meta.sample(frac=1, random_state=123) before grouping by split


@dataclass(frozen=True)
class Check:
    """One line of the report: ``stored`` vs ``recomputed``; ``ok`` is None for information only."""

    checkpoint: str
    check: str
    stored: float
    recomputed: float
    tol: float
    ok: bool | None
    note: str = ""

    @property
    def diff(self) -> float:
        return abs(self.stored - self.recomputed)


def _stored_arrays(lm) -> tuple[np.ndarray, np.ndarray]:
    st = lm.stored
    for k in (Key.VAL_SCORE, Key.VAL_LABEL):
        if getattr(st, k) is None:
            raise CheckpointError(f"{lm.path}: no {k!r}: nothing to verify (it holds "
                                  f"{', '.join(sorted(map(str, lm.checkpoint)))})")
    return st.val_score, st.val_label


def metric_checks(path: str | Path, metric_tol: float = 1e-4, fold: int | None = None) -> list[Check]:
    """Check 1 of the module docstring for one checkpoint (``fold``: the one the user said, checked against its
    own)."""
    lm = load_model(path)
    if fold is not None:
        _fold_of(lm, fold)
    ck, name = lm.checkpoint, Path(path).name
    score, label = _stored_arrays(lm)
    if lm.task == "clf":
        m = classification_metrics(score, label)
        key, main = STORED_METRIC[lm.task], "auroc"
        p = np.clip(score, 1e-12, 1 - 1e-12)
        p_true = np.where(label == 1, p, 1 - p)
        if loss_kind(lm.spec) == "focal":  # the loss the run trained and validated with (HM-CRNN's)
            loss, loss_name = float(np.mean(-((1 - p_true) ** FOCAL_GAMMA) * np.log(p_true))), "focal loss"
        else:
            loss, loss_name = float(-np.mean(np.log(p_true))), "cross-entropy"
        loss_note = ""
        extra = {"ap": m["ap"], "accuracy": m["accuracy"]}
    else:
        m = regression_metrics(score, label)
        key, main = STORED_METRIC[lm.task], ("pearson" if lm.spec.cells == 2 else "r2")
        loss, loss_name = float(np.mean((score - label) ** 2)), "mean squared error"
        # the original's regression val loss broadcasts (N, 1) against (N,) (docs/original.md §4): not comparable
        loss_note = "" if Key.SPEC in ck else "information: the original's regression val loss is mis-computed"
        extra = {k: m[k] for k in ("pearson", "spearman", "r2") if k != main}
    st = lm.stored
    if getattr(st, key) is None:
        raise CheckpointError(f"{lm.path}: no {key!r} stored for this {lm.task} checkpoint")
    stored = getattr(st, key) / 100.0
    out = [Check(name, f"{key} / 100 ({main} of val_score)", stored, m[main], metric_tol,
                 math.isfinite(m[main]) and abs(stored - m[main]) <= metric_tol)]
    if st.last_val_loss is not None:
        s_loss = st.last_val_loss
        out.append(Check(name, f"last_val_loss ({loss_name} of val_score)", s_loss, loss, math.nan if loss_note
                         else metric_tol, None if loss_note else abs(s_loss - loss) <= metric_tol, loss_note))
    out += [Check(name, f"{k} of val_score", math.nan, v, math.nan, None, "information") for k, v in extra.items()]
    return out


def check_fold(lm, fold: int | None) -> None:
    """``--fold`` must be the checkpoint's own fold where it records one."""
    stored = lm.stored.fold
    if fold is not None and stored is not None and fold != stored:
        raise UsageError(f"{lm.path}: --fold {fold}, but the checkpoint was trained on fold {stored}: its validation "
                         f"genes are fold {stored}'s (drop --fold)")


def replay_runtime(lm, runtime: Runtime) -> Runtime:
    """``runtime`` in the precision the run trained (and validated) in, where this device runs it (fp16: CUDA)."""
    trained_in = lm.checkpoint.get(Key.PRECISION, "fp32")
    if trained_in != "fp16" or runtime.torch_device().type == "cuda":
        return runtime.replace(precision=trained_in)
    return runtime


def _fold_of(lm, fold: int | None) -> int:
    check_fold(lm, fold)
    stored = lm.stored.fold
    if fold is not None:
        return fold
    if stored is not None:
        return stored
    m = re.search(r"fold(\d)", lm.path.name)
    if m:
        log.info("%s: fold %s taken from the file name", lm.path, m.group(1))
        return int(m.group(1))
    raise UsageError(f"{lm.path}: the checkpoint does not say its fold; pass --fold")


def _validation_genes(lm, meta: str | Path, fold: int, label: np.ndarray):
    """The fold's validation genes in the order of ``val_score`` (see module docstring), and that order's name."""
    import pandas as pd

    from chromoformer.data import read_metadata
    from chromoformer.data.folds import split_genes

    target = "label" if lm.task == "clf" else "expression"  # what val_label holds
    genes = read_metadata(meta, i_max=lm.config.i_max, w_max=lm.config.w_max, require=("split", target))
    by_id = {g.gene_id: g for g in genes}
    ids = lm.checkpoint.get(Key.VAL_GENE_IDS)
    if ids:
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UsageError(f"{meta}: {len(missing)} of the checkpoint's validation genes are not in it "
                             f"(e.g. {missing[0]})")
        return [by_id[i] for i in ids], "the checkpoint's val_gene_ids"
    _, val = split_genes(genes, fold)
    order = pd.Series(range(len(genes)), index=[g.gene_id for g in genes])
    shuffled = order.sample(frac=1, random_state=ORIGINAL_SHUFFLE_SEED)
    rank = {gid: r for r, gid in enumerate(shuffled.index)}
    candidates = [(val, "metadata order"), (sorted(val, key=lambda g: rank[g.gene_id]),
                                            "the original train.py order (metadata shuffled, seed 123)")]
    for cand, what in candidates:
        want = [float(g.label) if target == "label" else math.log2(g.expression + 1) for g in cand]
        if len(cand) == len(label) and np.allclose(want, label, rtol=0, atol=1e-6):
            return cand, what
    raise UsageError(f"{meta}: fold {fold} has {len(val)} validation genes but the checkpoint stores "
                     f"{len(label)} scores, or their labels differ in every known order; is this the fold's "
                     "metadata?")


def prediction_check(path: str | Path, meta: str | Path, signal: str | Path, *, fold: int | None = None,
                     score_tol: float = 1e-4, runtime: Runtime = DEFAULT_RUNTIME) -> Check:
    """Check 2 of the module docstring for one checkpoint."""
    from chromoformer.data.sources import open_source
    from chromoformer.inference.predict import predict_genes

    lm = load_model(path)
    score, label = _stored_arrays(lm)
    fold = _fold_of(lm, fold)
    genes, order = _validation_genes(lm, meta, fold, label)
    source = open_source(signal, build=False, n_feats=lm.config.n_feats, base=lm.spec.base, marks=lm.spec.marks)
    df = predict_genes([lm], genes, source, runtime=replay_runtime(lm, runtime))
    diff = float(np.max(np.abs(df.prediction.to_numpy(np.float64) - score)))
    return Check(Path(path).name, f"val_score re-predicted (fold {fold}, {len(genes)} genes, max |diff|)", 0.0, diff,
                 score_tol, diff <= score_tol, f"order: {order}")


def verify(checkpoints: list[str | Path], *, meta: str | Path | None = None, signal: str | Path | None = None,
           fold: int | None = None, metric_tol: float = 1e-4, score_tol: float = 1e-4,
           runtime: Runtime = DEFAULT_RUNTIME) -> list[Check]:
    """Both checks for every checkpoint (the second only with ``meta`` and ``signal``)."""
    if (meta is None) != (signal is None):
        raise UsageError("re-prediction needs both the metadata (-m) and the signals (-d)")
    if fold is not None and len(checkpoints) > 1:
        raise UsageError("--fold applies to one checkpoint; the others would be checked on the wrong genes")
    out: list[Check] = []
    for c in checkpoints:
        out += metric_checks(c, metric_tol, fold)
        if meta is not None:
            out.append(prediction_check(c, meta, signal, fold=fold, score_tol=score_tol, runtime=runtime))
    return out


def format_report(checks: list[Check]) -> str:
    def f(x: float) -> str:
        return "" if math.isnan(x) else f"{x:.6g}"

    rows = [("checkpoint", "check", "stored", "recomputed", "|diff|", "tolerance", "result")]
    for c in checks:
        result = {True: "ok", False: "MISMATCH", None: c.note}[c.ok] if c.ok is not None else c.note
        if c.ok is not None and c.note:
            result += f" ({c.note})"
        rows.append((c.checkpoint, c.check, f(c.stored), f(c.recomputed),
                     f(c.diff) if c.ok is not None else "", f(c.tol), result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
                     for r in rows)
