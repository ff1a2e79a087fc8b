"""DataLoaders whose worker processes start safely from any process.

PyTorch starts loader workers with ``fork`` on Linux. Forking a process that runs other
threads copies their locks in whatever state they are in: a worker can then wait forever
on a lock no thread of its own will release, and the loop waits forever on that worker
(no error, no timeout). Such threads are common in the processes users train from: a
notebook that imported hictkpy holds its logger thread (which warns that it "does not
support multiprocessing when using fork()"), Arrow keeps thread pools, tqdm a monitor.
Our CI's test session hung so, at its first loader with workers after hictkpy was imported.

Workers are therefore started by a ``forkserver``: a single-threaded server process,
started once per process on the first loader with workers, that has imported torch and
chromoformer and forks each worker from itself. Workers get the dataset pickled (a
binned store is re-opened memory-mapped, never copied; see
:meth:`chromoformer.data.store.BinnedStore.__getstate__`); batches are exactly those of
``fork``, and of ``num_workers=0``. Where ``forkserver`` does not exist (Windows),
``spawn`` is used. As with ``spawn`` (macOS, Windows, and Python 3.14's default), a
*script* that starts loaders with workers needs the ``if __name__ == "__main__":`` guard:
each worker imports the script's module first.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from multiprocessing.context import BaseContext

from torch.utils.data import DataLoader, Dataset, Sampler

# What the forkserver imports before it forks workers, so that a worker starts in milliseconds.
PRELOAD = ("torch", "numpy", "chromoformer.data.dataset", "chromoformer.data.store", "chromoformer.data.marks")


def worker_start_method() -> str:
    """``forkserver`` where this platform has it, else ``spawn``."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def worker_context(num_workers: int) -> BaseContext | None:
    """The multiprocessing context loader workers start from (None without workers)."""
    if num_workers == 0:
        return None
    method = worker_start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(list(PRELOAD))  # only read when the server first starts
    return ctx


def make_loader(
    dataset: Dataset,
    *,
    num_workers: int = 0,
    batch_size: int = 1,
    batch_sampler: Sampler | Iterable | None = None,
) -> DataLoader:
    """A :class:`~torch.utils.data.DataLoader` over ``dataset`` whose workers start from :func:`worker_context`.

    Give ``batch_size`` (fixed-size batches in dataset order) or ``batch_sampler``
    (lists of indices), as for ``DataLoader``.
    """
    batches = {"batch_sampler": batch_sampler} if batch_sampler is not None else {"batch_size": batch_size}
    return DataLoader(dataset, num_workers=num_workers, multiprocessing_context=worker_context(num_workers), **batches)
