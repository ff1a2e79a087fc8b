"""Mixed precision: the arithmetic a run computes in, ``fp32`` (the default), ``bf16`` or ``fp16``.

``fp32`` runs every op in float32: every equivalence with the original (and every bit-identity test) holds
there. ``bf16`` and ``fp16`` run the forward pass under :func:`torch.autocast`: matrix products, convolutions
and LSTMs in 16 bits, reductions, softmax and the losses in float32, the weights and the optimizer state in
float32 throughout (so a checkpoint is the same file format whatever the precision). ``bf16`` has float32's
range and 8 bits of mantissa; it runs on CPU and CUDA and needs no loss scaling. ``fp16`` has 11 bits of
mantissa but a range of 6e-5..65504, so its gradients are scaled (:class:`torch.amp.GradScaler`, whose state is
checkpointed); torch's CPU kernels for it are slow or missing, so it is refused on CPU.

Which to pick: ``fp32`` on CPU unless speed matters more than the last digits (``bench/precision.py``
measures both); ``bf16`` on a GPU with bf16 units (A100, H100); ``fp16`` only on older GPUs without them.
Predictions in 16 bits differ from fp32's in the 3rd significant digit, not in ranking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from chromoformer.errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: object, device: torch.device | None = None) -> str:
    """``precision`` if it is one of :data:`PRECISIONS` usable on ``device``, else :class:`UsageError`."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device is not None and device.type != "cuda":
        raise UsageError(f"--precision fp16 needs a CUDA device (this run computes on {device.type}); use bf16, "
                         "which runs on CPU and CUDA")
    return str(precision)


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """The forward passes inside run in ``precision`` on ``device`` (nothing changes for ``fp32``)."""
    if precision == "fp32":
        yield
        return
    check_precision(precision, device)
    with torch.autocast(device_type=device.type, dtype=DTYPES[precision]):
        yield


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for ``fp16`` (None otherwise: fp32 and bf16 need none)."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
