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
``spawn`` is used. Each worker watches the process that made its loader and exits when
it is gone (:func:`_watch_main`). As with ``spawn`` (macOS, Windows, and Python 3.14's default), a
*script* that starts loaders with workers needs the ``if __name__ == "__main__":`` guard:
each worker imports the script's module first.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
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


def _process_id(pid: int) -> str | None:
    """``pid``'s start time (from /proc), or None if it is gone or a zombie; "" where /proc is absent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        if not os.path.isdir("/proc"):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            return ""
        return None
    return None if fields[0] == "Z" else fields[19]


def _watch_main(main_pid: int, main_id: str | None, _worker_id: int) -> None:
    """A worker's ``worker_init_fn``: exit when the process that made the loader is gone.

    torch's own watchdog only notices a change of the worker's parent, which is the
    forkserver here; the forkserver lives as long as any worker holds its pipe, so after a
    kill -9 of the main process workers and server would wait for each other for ever.
    """

    def watch() -> None:
        while _process_id(main_pid) == main_id:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="chromoformer-main-watchdog", daemon=True).start()


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
    watch = functools.partial(_watch_main, os.getpid(), _process_id(os.getpid())) if num_workers else None
    return DataLoader(dataset, num_workers=num_workers, multiprocessing_context=worker_context(num_workers),
                      worker_init_fn=watch, **batches)
