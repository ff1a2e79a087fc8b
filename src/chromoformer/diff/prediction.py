"""Prediction for the differential task: two cells' metadata and signals + pair checkpoints -> one table.

Columns (:data:`chromoformer.files.predictions.COLUMNS` ``diff``): ``gene_id``, ``expr_a`` and ``expr_b`` (each
cell's predicted log2(RPKM + 1), from the pair model's per-cell heads), ``lfc`` (the predicted
log2((RPKM_B + 1) / (RPKM_A + 1))) and ``call`` (up / down / unchanged at ``|lfc| >= threshold``); a fold
ensemble averages the checkpoints' outputs and adds ``lfc_sd``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.metadata import Gene
from chromoformer.data.sources import RegionSource
from chromoformer.diff.pairing import PairedDataset, check_same_marks, open_pair_sources, read_pairs
from chromoformer.engine.batches import predict_ensemble
from chromoformer.engine.checkpoint import Key
from chromoformer.engine.loading import LoadedModel
from chromoformer.engine.runtime import DEFAULT_RUNTIME, Runtime
from chromoformer.errors import UsageError
from chromoformer.files.predictions import CALLS, COLUMNS
from chromoformer.inference.predict import load_ensemble
from chromoformer.inference.verify import Check, check_fold, replay_runtime
from chromoformer.metrics import DIFF_THRESHOLD, diff_call


def pair_frame(gene_ids: Sequence[str], outputs: list[np.ndarray], threshold: float = DIFF_THRESHOLD
               ) -> pd.DataFrame:
    """Average per-checkpoint (N, 3) outputs ``[lfc, expr_a, expr_b]`` into the table (see module docstring)."""
    stack = np.stack(outputs)  # (checkpoints, N, 3)
    mean = stack.mean(axis=0)
    cols = COLUMNS["diff"]
    out = pd.DataFrame({cols[0]: list(gene_ids), cols[1]: mean[:, 1], cols[2]: mean[:, 2], cols[3]: mean[:, 0],
                        cols[4]: [CALLS[int(c)] for c in diff_call(mean[:, 0], threshold)]})
    if len(outputs) > 1:
        out["lfc_sd"] = stack[:, :, 0].std(axis=0, ddof=1)
    return out


def check_threshold(threshold: float) -> float:
    """A call threshold: a finite number > 0 (|log2 fold change|)."""
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise UsageError(f"--threshold {threshold!r}: must be a number (|log2 fold change|)") from None
    if not (math.isfinite(t) and t > 0):
        raise UsageError(f"--threshold {threshold}: must be a finite |log2 fold change| > 0 (1 = two-fold)")
    return t


def predict_pair_genes(checkpoints: Sequence[str | Path | LoadedModel], pairs: Sequence[tuple[Gene, Gene]],
                       source_a: RegionSource, source_b: RegionSource, *, runtime: Runtime = DEFAULT_RUNTIME,
                       threshold: float = DIFF_THRESHOLD) -> pd.DataFrame:
    """Predict paired genes with each (``diff``) checkpoint and average; see the module docstring."""
    threshold = check_threshold(threshold)
    dev = runtime.torch_device()
    models = load_ensemble(checkpoints)
    spec = models[0].spec
    spec.expect_cells(2, models[0].path)
    check_same_marks(source_a, source_b)
    ds = PairedDataset(list(pairs), source_a, source_b, spec.config, spec.binsizes)
    ds.validate()
    outputs, ids = predict_ensemble([m.model.to(dev) for m in models], ds, dev, batch_size=runtime.batch_size,
                                    num_workers=runtime.num_workers, precision=runtime.precision)
    return pair_frame(ids, outputs, threshold)


def predict_pairs(meta_a: str | Path, signal_a: str | Path, meta_b: str | Path, signal_b: str | Path,
                  checkpoints: Sequence[str | Path | LoadedModel], *, runtime: Runtime = DEFAULT_RUNTIME,
                  threshold: float = DIFF_THRESHOLD) -> pd.DataFrame:
    """Predict every gene the two cells' metadata share (both must list the same genes, with expression or
    not) from their signals (npy directories or binned stores, read as they are)."""
    models = load_ensemble(checkpoints)
    spec = models[0].spec
    spec.expect_cells(2, models[0].path)
    pairs = read_pairs(spec, meta_a, meta_b, require_split=False, require_expression=False)
    src_a, src_b = open_pair_sources(spec, signal_a, signal_b, None, build=False)
    return predict_pair_genes(models, pairs, src_a, src_b, runtime=runtime, threshold=threshold)


def pair_prediction_check(checkpoint: str | Path, meta_a: str | Path, signal_a: str | Path, meta_b: str | Path,
                          signal_b: str | Path, *, fold: int | None = None, score_tol: float = 1e-4,
                          runtime: Runtime = DEFAULT_RUNTIME) -> Check:
    """``verify``'s re-prediction for a differential checkpoint: its stored ``val_score`` (the held-out genes'
    predicted fold changes) against the fold change predicted again from both cells' files."""
    lm = load_ensemble([checkpoint])[0]
    lm.spec.expect_cells(2, lm.path)
    ids, score = lm.checkpoint.get(Key.VAL_GENE_IDS), lm.stored.val_score
    if ids is None or score is None:
        raise UsageError(f"{lm.path}: no stored validation genes and scores to re-predict")
    check_fold(lm, fold)
    pred = predict_pairs(meta_a, signal_a, meta_b, signal_b, [lm], runtime=replay_runtime(lm, runtime)
                         ).set_index("gene_id")
    missing = [g for g in ids if g not in pred.index]
    if missing:
        raise UsageError(f"{meta_a}: the checkpoint's validation gene {missing[0]} is not among the two cells' genes "
                         f"({len(missing)} missing): these are not the files it was trained on")
    diff = float(np.max(np.abs(pred.loc[list(ids), "lfc"].to_numpy(np.float64) - np.asarray(score))))
    return Check(Path(checkpoint).name, f"val_score re-predicted (fold {fold or lm.stored.fold}, {len(ids)} genes, "
                 "max |diff| of the fold change)", 0.0, diff, score_tol, diff <= score_tol,
                 "order: the checkpoint's val_gene_ids")
