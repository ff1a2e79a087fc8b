"""How a run computes, never what it computes: one options object for the device, loader workers, threads and
the inference batch size, and the arithmetic's precision.

A :class:`Runtime` is built once where a user's values come in (a command line, a library call, the workflow's
jobs); its construction runs every check, so the functions it is passed to (``fit_fold``, ``predict_genes``,
``verify``, the differential wing's) never check or relay the four values one by one. Errors name the command
line's flags, which spell the fields (``num_workers`` is ``--num-workers``).

Numbers: the precision (:mod:`chromoformer.engine.precision`), the device and the thread count decide the last
bits of floating-point results (results are
bit-identical at one device and thread count, not across them); workers and the batch size never change a
prediction (``tests/test_loader_workers.py``, ``tests/test_model.py``'s batch-size invariance).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from chromoformer.data.loader import check_workers
from chromoformer.engine.distributed import resolve_device
from chromoformer.engine.precision import check_precision
from chromoformer.engine.trackers import check_loggers
from chromoformer.errors import UsageError

MAX_THREADS = 1024  # more threads than any machine has cores: a typo, refused before torch or OpenMP sees it
MAX_BATCH = 2**20  # genes per inference batch


def _count(value: object, flag: str, least: int, most: int, what: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise UsageError(f"--{flag} must be >= {least} (at most {most}), got {value!r}{what}")


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes.

    Parameters
    ----------
    device : ``cpu``, ``cuda``, ``cuda:1``, ``mps``...; None = CUDA if available, else CPU (under torchrun each
        rank takes its local GPU)
    num_workers : DataLoader worker processes (0 = load in the main process); None = one per spare core, at most
        4, for a loop of 16 batches or more
    threads : CPU threads of torch's intra-op pool; None = torch's default
    batch_size : genes per inference batch (training batches are the config's ``bsz``)
    precision : ``fp32`` (default), ``bf16`` or ``fp16`` (CUDA only): the arithmetic of the forward passes
        (:mod:`chromoformer.engine.precision`); the one field that changes numbers
    loggers : experiment trackers a training run logs to (:mod:`chromoformer.engine.trackers`); none by default
    """

    device: str | None = None
    num_workers: int | None = 0
    threads: int | None = None
    batch_size: int = 64
    precision: str = "fp32"
    loggers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_workers(self.num_workers, "--num-workers")
        if self.threads is not None:
            _count(self.threads, "threads", 1, MAX_THREADS)
        _count(self.batch_size, "batch-size", 1, MAX_BATCH, " (the batch size: genes per batch)")
        if self.device is not None:
            if not isinstance(self.device, (str, torch.device)):
                raise UsageError(f"--device must be a device name such as cpu or cuda:1, got {self.device!r}")
            resolve_device(self.device)  # a misspelt or absent device is one line here, not a torch error later
        object.__setattr__(self, "loggers", check_loggers(self.loggers or ()))
        check_precision(self.precision, self.torch_device() if self.precision == "fp16" else None)

    def torch_device(self) -> torch.device:
        """The device as torch names it (see :func:`chromoformer.engine.distributed.resolve_device`)."""
        return resolve_device(self.device)

    def replace(self, **changes: object) -> Runtime:
        """A copy with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)


DEFAULT_RUNTIME = Runtime()  # the library's default: the best device here, no worker processes, torch's threads
