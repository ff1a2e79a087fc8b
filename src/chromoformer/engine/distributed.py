"""Data-parallel training on PyTorch's own engine (``torchrun``), and its single-process case.

Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1) each process trains on its
share of every global batch; gradients are averaged by
:class:`torch.nn.parallel.DistributedDataParallel` (NCCL on CUDA, gloo on CPU). The
global batch stays ``config.bsz`` and its order stays the single-process one, so N
processes follow the single-process run up to float rounding. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from chromoformer.errors import RunError, UsageError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: ``rank`` of ``world`` (``world == 1``: no torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files and logs at INFO."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """Run ``fn`` on rank 0 only; an error there is raised on every rank (nobody waits forever)."""
        err: str | None = None
        result = None
        if self.main:
            try:
                result = fn()
            except BaseException as e:
                err = f"{type(e).__name__}: {e}"
                if self.active:
                    self.broadcast(err)
                raise
        err = self.broadcast(err)
        if err is not None:
            # Rank 0 is raising and will never join this barrier: it ends when rank 0's process exits
            # (its connections close, or torchrun stops this rank). Waiting here lets rank 0 print its
            # error first instead of being stopped because this rank exited before it.
            with contextlib.suppress(Exception):
                dist.barrier()
            raise RunError(f"rank 0 failed: {err}")
        return result


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch device (None: CUDA if available, else CPU), checked to exist here:
    a misspelt name or a GPU this machine lacks is a :class:`UsageError`, not a torch traceback."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"--device {device!r}: not a torch device (cpu, cuda, cuda:1, mps...)") from None
    backend = getattr(torch, dev.type, None) if dev.type != "cuda" else torch.cuda
    available = getattr(backend, "is_available", None)
    if dev.type == "mps":
        available = torch.backends.mps.is_available
    if callable(available) and not available():
        raise UsageError(f"--device {device}: no {dev.type} device is available here (this torch build or machine "
                         "lacks it); use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return dev


def from_env(device: str | None = None) -> tuple[Dist, torch.device]:
    """The job this process belongs to (from torchrun's variables) and the device it should use.

    Starts the process group when ``WORLD_SIZE`` > 1 and none is running: NCCL when the
    device is CUDA, gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device)
    cuda = resolved.type == "cuda"
    if world > 1:
        dev = torch.device(f"cuda:{local_rank}" if cuda and device in (None, "cuda") else (device or "cpu"))
        if not dist.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        return Dist(dist.get_rank(), dist.get_world_size(), local_rank), dev
    return Dist(), resolved


def shutdown() -> None:
    """End the process group started by :func:`from_env`, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def share(n: int, rank: int, world: int) -> slice:
    """Rank's contiguous share of ``n`` items (the first ``n % world`` ranks get one more)."""
    q, r = divmod(n, world)
    lo = rank * q + min(rank, r)
    return slice(lo, lo + q + (rank < r))


class RankBatches(Sampler[list[int]]):
    """Global batches of ``order`` (``bsz`` each, the last dropped when ``drop_last``), this rank's share of each.

    With ``world == 1`` these are exactly ``DataLoader(sampler=order, batch_size=bsz,
    drop_last=drop_last)``'s batches, so the single-process run is unchanged.
    """

    def __init__(self, order: Sequence[int], bsz: int, drop_last: bool, rank: int = 0, world: int = 1) -> None:
        self.order, self.bsz, self.drop_last, self.rank, self.world = list(order), bsz, drop_last, rank, world

    def global_batches(self) -> list[list[int]]:
        n = len(self.order) // self.bsz if self.drop_last else -(-len(self.order) // self.bsz)
        return [self.order[i * self.bsz : (i + 1) * self.bsz] for i in range(n)]

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.global_batches():
            yield b[share(len(b), self.rank, self.world)]

    def __len__(self) -> int:
        return len(self.global_batches())
