"""Prediction: metadata + signals + one or more checkpoints -> csv (fold ensembles averaged).

For a classifier the csv has ``gene_id, logit_0, logit_1, prediction`` with
``prediction`` = softmax P(class 1) (``--probability sigmoid`` gives the original
demo's sigmoid(logit_1) instead); for a regressor ``gene_id, prediction`` in
log2(RPKM + 1). With several checkpoints, logits (or values) are averaged and the
probability is taken of the averaged logits, and the spread over checkpoints is added
(``prediction_sd``, ``margin_sd``: see :func:`ensemble_frame`). ``--temperature`` applies a
temperature fitted by ``chromoformer evaluate --temperature``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chromoformer.config import ChromoformerConfig, load_config
from chromoformer.data import ChromoformerDataset, Gene, read_metadata
from chromoformer.data.marks import select_marks
from chromoformer.data.sources import RegionSource, open_source
from chromoformer.engine.batches import predict_ensemble
from chromoformer.engine.checkpoint import CheckpointError
from chromoformer.engine.loading import LoadedModel, load_model
from chromoformer.engine.pretrained import PREFIX, resolve_checkpoints
from chromoformer.engine.runtime import DEFAULT_RUNTIME, Runtime
from chromoformer.errors import UsageError
from chromoformer.spec import PREDICTION_FIELDS

log = logging.getLogger(__name__)


def ensemble_frame(
    gene_ids: Sequence[str], outputs: list[np.ndarray], task: str, *, probability: str = "softmax",
    temperature: float | None = None,
) -> pd.DataFrame:
    """Average per-checkpoint outputs (each (N, n_out)) and format the prediction table.

    With two or more checkpoints the spread between them is added: ``prediction_sd`` (the
    sample standard deviation over checkpoints of each one's own prediction) and, for a
    classifier, ``margin_sd`` (the same of logit_1 - logit_0). ``temperature`` divides the
    classifier's logits before the softmax (see :mod:`chromoformer.results.evaluate`).
    """
    stack = np.stack(outputs)  # (checkpoints, N, n_out)
    mean = stack.mean(axis=0)
    several = len(outputs) > 1
    if task == "reg":
        if temperature is not None:
            raise UsageError("a temperature applies to classifiers; this is a regressor")
        out = pd.DataFrame({"gene_id": gene_ids, "prediction": mean[:, 0]})
        return out.assign(prediction_sd=stack[:, :, 0].std(axis=0, ddof=1)) if several else out
    if temperature is not None and probability != "softmax":
        raise UsageError("a temperature scales the softmax probability; it does not apply with --probability sigmoid")
    t = 1.0 if temperature is None else check_temperature(temperature)
    logits = torch.from_numpy(mean)
    if probability == "softmax":
        p = torch.softmax(logits / t, dim=1)[:, 1]
        each = torch.softmax(torch.from_numpy(stack) / t, dim=2)[:, :, 1]
    elif probability == "sigmoid":
        p = torch.sigmoid(logits[:, 1])
        each = torch.sigmoid(torch.from_numpy(stack)[:, :, 1])
    else:
        raise ValueError(f"unknown probability {probability!r}")
    out = pd.DataFrame({"gene_id": gene_ids, "logit_0": mean[:, 0], "logit_1": mean[:, 1], "prediction": p.numpy()})
    if several:
        out["prediction_sd"] = each.numpy().std(axis=0, ddof=1)
        out["margin_sd"] = (stack[:, :, 1] - stack[:, :, 0]).std(axis=0, ddof=1)
    return out


TEMPERATURES = (1e-2, 1e2)  # evaluate fits within [1/50, 50]; outside this range softmax saturates or overflows


def check_temperature(value: float, what: str = "--temperature") -> float:
    """``value`` as a float if it is a finite temperature within :data:`TEMPERATURES`, else :class:`UsageError`."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} {value!r}: the temperature must be a number") from None
    lo, hi = TEMPERATURES
    if not (math.isfinite(t) and lo <= t <= hi):
        raise UsageError(f"{what} {value}: the temperature must be a finite number in [{lo:g}, {hi:g}] (evaluate "
                         "--temperature fits one in [0.02, 50])")
    return t


def ensemble_mismatch(a: LoadedModel, b: LoadedModel) -> str:
    """Names of what differs between two checkpoints in a way that matters for prediction ('' if nothing)."""
    return ", ".join(a.spec.differences(b.spec, PREDICTION_FIELDS))


def load_ensemble(checkpoints: Sequence[str | Path | LoadedModel], config: ChromoformerConfig | None = None,
                  ) -> list[LoadedModel]:
    """Load checkpoints (paths, ``pretrained:EID[/reg][/foldK]`` names, or already loaded) that can be averaged:
    same spec where it matters."""
    if not checkpoints:
        raise UsageError("no checkpoint given")
    named = [c for c in checkpoints if isinstance(c, str) and c.startswith(PREFIX)]
    if named:
        checkpoints = [p for c in checkpoints for p in (resolve_checkpoints([c]) if c in named else [c])]
    models = [c if isinstance(c, LoadedModel) else load_model(c, config, map_location="cpu") for c in checkpoints]
    for m in models[1:]:
        differ = ensemble_mismatch(models[0], m)
        if differ:
            raise CheckpointError(f"{m.path}: its {differ} differ from {models[0].path}'s "
                                  f"({models[0].spec.describe(differ.split(', '))}); cannot ensemble them")
    return models


def predict_genes(
    checkpoints: Sequence[str | Path | LoadedModel],
    genes: Sequence[Gene],
    source: RegionSource,
    *,
    mark_map: Mapping[str, str] | str | None = None,
    runtime: Runtime = DEFAULT_RUNTIME,
    probability: str = "softmax",
    temperature: float | None = None,
    absent_marks: Sequence[str] = (),
) -> pd.DataFrame:
    """Predict ``genes`` from ``source`` with each checkpoint and average (see module docstring).

    The source's marks must be the checkpoints' (by name and order) unless ``mark_map``
    says how to read them (:func:`chromoformer.data.marks.select_marks`). ``absent_marks``
    are predicted without: only models trained with ``mark_dropout`` > 0 can.
    """
    dev = runtime.torch_device()
    models = load_ensemble(checkpoints)
    spec = models[0].spec
    spec.expect_cells(1, models[0].path)
    if absent_marks and spec.config.mark_dropout == 0:
        raise UsageError(f"{models[0].path}: trained without mark dropout, so it cannot predict without "
                         f"{', '.join(absent_marks)}; retrain with mark_dropout > 0 in the config (e.g. 0.15)")
    ds = ChromoformerDataset(list(genes), select_marks(source, spec.marks, mark_map, absent_marks), spec.config,
                             spec.binsizes, spec.task)
    ds.validate()
    outputs, ids = predict_ensemble([m.model.to(dev) for m in models], ds, dev, batch_size=runtime.batch_size,
                                    num_workers=runtime.num_workers, precision=runtime.precision)
    return ensemble_frame(ids, outputs, spec.task, probability=probability, temperature=temperature)


def predict(
    meta: str | Path,
    signal: str | Path,
    checkpoints: Sequence[str | Path | LoadedModel],
    *,
    config: str | Path | None = None,
    runtime: Runtime = DEFAULT_RUNTIME,
    probability: str = "softmax",
    eid: str | None = None,
    store: str | Path | None = None,
    mark_map: Mapping[str, str] | str | None = None,
    temperature: float | None = None,
    absent_marks: Sequence[str] = (),
) -> pd.DataFrame:
    """Predict every gene of the metadata csv ``meta`` from ``signal`` (an npy directory or a binned store).

    ``signal`` is named as in :func:`chromoformer.training.fit.train_fold`.
    """
    models = load_ensemble(checkpoints, load_config(config) if config else None)
    spec = models[0].spec
    genes = read_metadata(meta, i_max=spec.config.i_max, w_max=spec.config.w_max, eid=eid)
    source = open_source(signal, store=store, build=False, n_feats=spec.config.n_feats, base=spec.base,
                         marks=spec.marks)
    return predict_genes(models, genes, source, mark_map=mark_map, runtime=runtime, probability=probability,
                         temperature=temperature, absent_marks=absent_marks)
