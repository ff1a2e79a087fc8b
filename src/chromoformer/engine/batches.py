"""Batches on a device: moving them there, iterating a loader so that its workers always stop, and running a
model over all of them in eval mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from chromoformer.data.loader import length
from chromoformer.progress import tqdm


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a (nested) batch to ``device``; leaves other values alone."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device, non_blocking=True)
        elif isinstance(v, dict):
            out[k] = {kk: vv.to(device, non_blocking=True) for kk, vv in v.items()}
        else:
            out[k] = v
    return out


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


@torch.no_grad()
def predict_batches(
    model: torch.nn.Module, batches: Iterable[dict], device: torch.device, desc: str = "predict"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run ``model`` in eval mode. Returns raw outputs (N, n_out), labels (N,) and gene ids."""
    model.eval()
    outs, labels, ids = [], [], []
    with batches_of(batches) as it:
        for batch in tqdm(it, desc=desc, unit="batch", leave=False, total=length(batches)):
            outs.append(model(**to_device(batch, device)).float().cpu())
            labels.append(batch["label"])
            ids.extend(batch["gene_id"])
    if not outs:
        return np.zeros((0, 0), np.float32), np.zeros(0), []
    return torch.cat(outs).numpy(), torch.cat(labels).numpy(), ids
