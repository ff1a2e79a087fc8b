"""Batches on a device: moving them there, iterating a loader so that its workers always stop, and running a
model over all of them in eval mode.

A batch is one cell's (:class:`~chromoformer.data.dataset.ChromoformerDataset`: the model takes it as keywords,
its target is ``label``) or a pair's (:class:`~chromoformer.diff.pairing.PairedDataset`: the model takes the two
cells' batches ``a`` and ``b`` and returns a dict; its target is ``lfc``). :func:`forward`, :func:`output_table`
and :func:`target` are the one place that tells them apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from chromoformer.data.loader import length, make_loader
from chromoformer.engine.precision import autocast
from chromoformer.progress import tqdm

PAIR_OUTPUTS = ("lfc", "expr_a", "expr_b")  # the columns of a pair model's output table, in order


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a (nested) batch to ``device``; leaves other values alone."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device, non_blocking=True)
        elif isinstance(v, dict):
            out[k] = to_device(v, device)
        else:
            out[k] = v
    return out


def is_pair(batch: dict) -> bool:
    """Whether ``batch`` holds two cells' genes (the differential task)."""
    return "a" in batch and "b" in batch


def forward(model: torch.nn.Module, batch: dict) -> torch.Tensor | dict[str, torch.Tensor]:
    """``model(**batch)`` (B, n_out) for one cell's batch, ``model(batch["a"], batch["b"])`` (a dict) for a pair's."""
    return model(batch["a"], batch["b"]) if is_pair(batch) else model(**batch)


def as_float(out: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
    """A model's output (a tensor or a pair model's dict) in float32 (unchanged when it already is)."""
    return out.float() if isinstance(out, torch.Tensor) else {k: v.float() for k, v in out.items()}


def output_table(out: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, n_out): a single-cell output as it is; a pair model's :data:`PAIR_OUTPUTS` side by side, (B, 3)."""
    return out if isinstance(out, torch.Tensor) else torch.cat([out[k] for k in PAIR_OUTPUTS], dim=1)


def target(batch: dict) -> torch.Tensor:
    """(B,) what the batch is scored against: ``label`` (one cell) or the observed fold change ``lfc`` (a pair)."""
    return batch["lfc"] if is_pair(batch) else batch["label"]


@contextlib.contextmanager
def batches_of(loader: Iterable[dict]) -> Iterator[Iterator[dict]]:
    """Iterate ``loader``, and stop its worker processes as soon as the loop ends, also on an error.

    Without this a loader iterator whose loop raised (a NaN in a region, say) stays alive in
    the exception's traceback, and its workers are stopped only when it is garbage-collected,
    which waits up to 10 s for each of them: a library caller that catches the error pays that
    later, at a random point.
    """
    it = iter(loader)
    try:
        yield it
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)  # torch's own clean-up (multi-process iterators)
        if shutdown is not None:
            shutdown()


def predict_batches(
    model: torch.nn.Module, batches: Iterable[dict], device: torch.device, *, desc: str = "predict",
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run ``model`` in eval mode. Returns raw outputs (N, n_out) (see :func:`output_table`), targets (N,) and
    gene ids."""
    outs, labels, ids = ensemble_batches([model], batches, device, desc=desc, precision=precision)
    return outs[0], labels, ids


@torch.no_grad()
def ensemble_batches(
    models: Sequence[torch.nn.Module], batches: Iterable[dict], device: torch.device, *, desc: str = "predict",
    precision: str = "fp32",
) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Run every model of ``models`` in eval mode on each batch, which is loaded (and moved) once for all.

    Returns one raw output array (N, n_out) per model, in ``models`` order, the targets (N,) and the gene
    ids. Each model's outputs are those of :func:`predict_batches` alone, bit for bit (same batches, same
    order): a fold ensemble costs one pass of the data path instead of one per checkpoint. ``precision``:
    :mod:`chromoformer.engine.precision` (the outputs come back as float32 whatever it is).
    """
    for m in models:
        m.eval()
    outs: list[list[torch.Tensor]] = [[] for _ in models]
    labels, ids = [], []
    with batches_of(batches) as it:
        for batch in tqdm(it, desc=desc, unit="batch", leave=False, total=length(batches)):
            on_device = to_device(batch, device)
            for m, o in zip(models, outs, strict=True):
                with autocast(precision, device):
                    out = output_table(forward(m, on_device))
                o.append(out.float().cpu())
            labels.append(target(batch))
            ids.extend(batch["gene_id"])
    if not labels:
        return [np.zeros((0, 0), np.float32) for _ in models], np.zeros(0), []
    return [torch.cat(o).numpy() for o in outs], torch.cat(labels).numpy(), ids


def predict_ensemble(models: Sequence[torch.nn.Module], dataset, device: torch.device, *, batch_size: int,
                     num_workers: int | None, precision: str = "fp32") -> tuple[list[np.ndarray], list[str]]:
    """Every model's raw outputs (N, n_out) over ``dataset`` in one pass of the data (:func:`ensemble_batches`),
    and the gene ids; a fold ensemble's prediction, one cell's or a pair's."""
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers)
    desc = f"predict ({len(models)} checkpoint{'s' * (len(models) > 1)})"
    outputs, _, ids = ensemble_batches(models, loader, device, desc=desc, precision=precision)
    return outputs, ids
