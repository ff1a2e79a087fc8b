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
import signal
import threading
import time
from collections.abc import Iterable
from multiprocessing.context import BaseContext

from torch.utils.data import DataLoader, Dataset, Sampler

from chromoformer.errors import UsageError

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

    A worker ignores SIGTERM, SIGHUP and SIGINT: a terminal hangup or ``kill -- -PGID`` reaches the whole process
    group, and the main process, which handles them (one line, its outputs left whole), stops its workers itself.
    """
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)

    def watch() -> None:
        while _process_id(main_pid) == main_id:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="chromoformer-main-watchdog", daemon=True).start()


AUTO_MIN_BATCHES = 16  # below this, starting worker processes (~2 s once) costs more than it saves


def auto_workers(n_batches: int | None) -> int:
    """Workers for ``num_workers=None`` ("auto"): one per spare core, at most 4, for a loop of at least
    :data:`AUTO_MIN_BATCHES` batches; none for a shorter one (or one of unknown length). Results never depend
    on it: workers only move the loading into other processes."""
    if n_batches is None or n_batches < AUTO_MIN_BATCHES:
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def check_workers(num_workers: int | None, where: str) -> None:
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 0):
        raise UsageError(f"{where}: num_workers must be an integer >= 0 or None (auto), got {num_workers!r}")


def make_loader(
    dataset: Dataset,
    *,
    num_workers: int | None = 0,
    batch_size: int = 1,
    batch_sampler: Sampler | Iterable | None = None,
) -> DataLoader:
    """A :class:`~torch.utils.data.DataLoader` over ``dataset`` whose workers start from :func:`worker_context`.

    Give ``batch_size`` (fixed-size batches in dataset order) or ``batch_sampler``
    (lists of indices), as for ``DataLoader``. ``num_workers=None`` picks them with :func:`auto_workers`.
    """
    batches = {"batch_sampler": batch_sampler} if batch_sampler is not None else {"batch_size": batch_size}
    if num_workers is None:
        n = length(batch_sampler) if batch_sampler is not None else -(-len(dataset) // batch_size)  # type: ignore
        num_workers = auto_workers(n)
    watch = functools.partial(_watch_main, os.getpid(), _process_id(os.getpid())) if num_workers else None
    return DataLoader(dataset, num_workers=num_workers, multiprocessing_context=worker_context(num_workers),
                      worker_init_fn=watch, **batches)


def length(x: object) -> int | None:
    """``len(x)``, or None for an object without a length (an iterator, a generator)."""
    try:
        return len(x)  # type: ignore[arg-type]
    except TypeError:
        return None
