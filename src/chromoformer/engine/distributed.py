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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
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


RENDEZVOUS_TIMEOUT_S = 300.0  # how long ranks wait for each other (CHROMOFORMER_RENDEZVOUS_TIMEOUT overrides)


def _env_int(name: str, default: int, lo: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} is not an integer (set by torchrun; unset it to run "
                         "in one process)") from None
    if v < lo:
        raise UsageError(f"environment variable {name}={v} must be >= {lo}")
    return v


def env_place() -> Dist:
    """This process's (rank, world, local rank) from torchrun's variables, checked: integers, and
    ``0 <= RANK < WORLD_SIZE``. No variables: a single process. Starts nothing."""
    world = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local_rank = _env_int("LOCAL_RANK", 0, 0)
    if rank >= world:
        raise UsageError(f"environment variables RANK={rank} and WORLD_SIZE={world}: a rank must be below the world "
                         "size (ranks are 0..WORLD_SIZE-1)")
    local_world = _env_int("LOCAL_WORLD_SIZE", world, 1)
    if local_rank >= local_world:
        raise UsageError(f"environment variables LOCAL_RANK={local_rank} and LOCAL_WORLD_SIZE={local_world}: the "
                         "local rank must be below the local world size")
    return Dist(rank, world, local_rank)


COLLECTIVE_TIMEOUT_S = 1800.0  # how long a collective waits for a silent peer (CHROMOFORMER_COLLECTIVE_TIMEOUT)


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        t = float(raw) if raw else default
    except ValueError:
        t = -1.0
    if not (0 < t < 1e7):
        raise UsageError(f"{name}={raw!r}: give a positive number of seconds")
    return t


def rendezvous_timeout() -> float:
    return _env_seconds("CHROMOFORMER_RENDEZVOUS_TIMEOUT", RENDEZVOUS_TIMEOUT_S)


def collective_timeout() -> float:
    """Seconds a collective (gradient all-reduce, barrier) waits for a peer that went silent (a node
    lost without its connections closing) before this rank fails with a clear error."""
    return _env_seconds("CHROMOFORMER_COLLECTIVE_TIMEOUT", COLLECTIVE_TIMEOUT_S)


def _rendezvous(place: Dist, timeout: float) -> dist.Store:
    """A store every rank has joined, or a :class:`RunError` naming the ranks that did not join
    within ``timeout`` seconds (instead of waiting forever)."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not addr or not port or not port.isdigit():
        raise UsageError(f"WORLD_SIZE={place.world} but MASTER_ADDR / MASTER_PORT are not set (or not a port): start "
                         "the ranks with torchrun, or unset WORLD_SIZE to run in one process")
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent hosts the store
    try:
        store: dist.Store = dist.TCPStore(addr, int(port), place.world, is_master=place.main and not agent,
                                          timeout=timedelta(seconds=timeout), wait_for_workers=False)
    except (RuntimeError, OSError) as e:  # DistStoreError derives from RuntimeError
        who = "could not host" if place.main and not agent else "could not reach"
        raise RunError(f"rank {place.rank} of {place.world}: {who} the rendezvous at {addr}:{port} within "
                       f"{timeout:g} s ({' '.join(str(e).split())[:160]}); is rank 0 running, and the address "
                       "right?") from None
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"chromoformer/{attempt}", store)
    store.set(f"joined/{place.rank}", "1")
    deadline = time.monotonic() + timeout
    while True:
        missing = [r for r in range(place.world) if not store.check([f"joined/{r}"])]
        if not missing:
            return store
        if time.monotonic() > deadline:
            shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
            raise RunError(f"rank {place.rank} of {place.world}: rank(s) {shown} did not join within {timeout:g} s "
                           f"(rendezvous {addr}:{port}); start every rank, or check WORLD_SIZE "
                           "(CHROMOFORMER_RENDEZVOUS_TIMEOUT sets the wait)")
        time.sleep(0.1)


def from_env(device: str | None = None) -> tuple[Dist, torch.device]:
    """The job this process belongs to (from torchrun's variables) and the device it should use.

    Starts the process group when ``WORLD_SIZE`` > 1 and none is running (NCCL when the
    device is CUDA, gloo otherwise), after a rendezvous that names missing ranks instead of
    waiting forever (:data:`RENDEZVOUS_TIMEOUT_S`).
    """
    place = env_place()
    resolved = resolve_device(device)
    cuda = resolved.type == "cuda"
    if place.world > 1:
        local_rank = place.local_rank
        dev = torch.device(f"cuda:{local_rank}" if cuda and device in (None, "cuda") else (device or "cpu"))
        if not dist.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            timeout = rendezvous_timeout()
            store = _rendezvous(place, timeout)
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", store=store, rank=place.rank,
                                    world_size=place.world, timeout=timedelta(seconds=collective_timeout()))
        return Dist(dist.get_rank(), dist.get_world_size(), local_rank), dev
    return Dist(), resolved


# What gloo / NCCL / the TCP store say when a peer process or its node is gone.
_LOST_PEER = ("connection closed by peer", "connection reset by peer", "broken pipe", "failed to recv",
              "connection refused", "timed out", "nccl communicator was aborted", "socket closed")


def lost_peer(err: BaseException, place: Dist) -> RunError | None:
    """A one-line :class:`RunError` for a collective that failed because another rank is gone, or
    None when ``err`` is something else (or this is a single process)."""
    if not place.active or not isinstance(err, RuntimeError) or isinstance(err, RunError):
        return None
    text = " ".join(str(err).split())
    if not (isinstance(err, getattr(dist, "DistError", ())) or any(s in text.lower() for s in _LOST_PEER)):
        return None
    return RunError(f"rank {place.rank} of {place.world}: lost contact with the other training processes "
                    f"({text[:160]}); a process or its node died. Start the run again with --resume: it continues "
                    "from the last committed epoch (last.pt)")


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
