"""Crash-safe file output: temp file beside the target, fsync, rename.

A crash, a kill or a full disk never leaves a truncated file under a final name, and an
existing file is replaced only by a complete new one. Temporaries are named
``.{name}.XXXX.tmp`` and locked while being written, so a later write of the same
target removes the ones a killed process left behind.

:func:`fault_point`: fault injection for the crash-consistency tests.

``CHROMOFORMER_FAULT=SITE[:N]`` makes the process kill itself with SIGKILL the N-th time
(default: the first) it reaches :func:`fault_point` ``(SITE)``. Sites are named after
what has just happened, e.g. ``train.epoch_committed`` or ``store.region_written``.
Unset (always, outside tests), a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from chromoformer.errors import DiskSpaceError, UsageError, is_no_space

log = logging.getLogger(__name__)

STALE_AFTER_S = 60.0  # an unlocked temporary older than this belongs to a dead writer
FULL_BELOW = 2**20  # a write that fails with less free space than this failed for lack of space


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def check_free_space(path: str | Path, needed: int, what: str) -> None:
    """Raise :class:`DiskSpaceError` before writing ``needed`` bytes under ``path``'s file system."""
    path = Path(path)
    free = shutil.disk_usage(_nearest_existing(path)).free
    if needed > free:
        raise DiskSpaceError(f"{path}: {what} needs {_mb(needed)} but only {_mb(free)} is free on that disk")


def no_space(path: str | Path, e: OSError) -> DiskSpaceError:
    """A one-line :class:`DiskSpaceError` for an ENOSPC-like ``e`` raised while writing ``path``."""
    path = Path(path)
    free = shutil.disk_usage(_nearest_existing(path)).free
    return DiskSpaceError(f"{path}: no space left on the device while writing it ({e.strerror}; "
                          f"{_mb(free)} free); nothing was written")


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (the folder a new file would go under)."""
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def writable_output(path: str | Path, what: str = "output") -> Path:
    """Check before any work, creating nothing, that ``path`` can be written: not a directory,
    and its nearest existing ancestor is a writable folder. Raises :class:`UsageError`."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name for the {what}")
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise UsageError(f"{path}: cannot create the folder for the {what}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK):
        raise UsageError(f"{path}: cannot create the {what}: {ancestor} is not writable")
    return path


def remove_stale_temps(path: Path, min_age: float = STALE_AFTER_S) -> None:
    """Remove ``.{path.name}.*.tmp`` left by killed writers (unlocked and older than ``min_age`` s;
    0 when the caller holds a lock that excludes every other writer of ``path``)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if time.time() - os.fstat(fd).st_mtime >= min_age:
                tmp.unlink(missing_ok=True)
        except BlockingIOError:
            pass  # a live writer holds it
        finally:
            os.close(fd)


def _new_temp(path: Path) -> tuple[int, str]:
    """A new ``.{name}.XXXX.tmp`` beside ``path``, locked (see :func:`remove_stale_temps`): (fd, its path).
    A full disk is :class:`DiskSpaceError`, any other refusal a :class:`UsageError`."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if is_no_space(e):
            raise no_space(path, e) from None
        raise UsageError(f"{path}: cannot write there ({e.strerror})") from None
    fcntl.flock(fd, fcntl.LOCK_EX)  # on a fresh file of our own: cannot block
    return fd, tmp


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], size_hint: int = 0) -> None:
    """Call ``write(f)`` on a binary temp file, fsync, then rename it to ``path``.

    ``size_hint`` (bytes) checks the free space first. A full disk raises
    :class:`DiskSpaceError` and leaves neither the temp file nor a partial ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{path}: cannot create its folder: {_nearest_existing(path.parent)} is a file") from None
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name for the output")
    remove_stale_temps(path)
    if size_hint:
        check_free_space(path.parent, size_hint, "this output")
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            fault_point("io.before_fsync")
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as e:
        # torch.save reports a full disk as a bare RuntimeError: judge by the space left
        full = is_no_space(e) or (isinstance(e, (RuntimeError, OSError))
                                  and shutil.disk_usage(path.parent).free < FULL_BELOW)
        if os.path.exists(tmp):
            os.unlink(tmp)
        if full:
            raise no_space(path, e if isinstance(e, OSError) else OSError(28, "No space left on device")) from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A locked temp file beside ``path`` for writers that need a file name (pyBigWig), renamed to
    ``path`` when the block ends without error and removed otherwise; one left by a killed
    process is removed by the next write of ``path`` (:func:`remove_stale_temps`)."""
    path = Path(path)
    writable_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, name = _new_temp(path)
    tmp = Path(name)
    try:  # the lock is held (by this fd) until the rename: a live writer's temp is kept
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        os.close(fd)
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    atomic_write(path, lambda f: f.write(text.encode()))


def write_table(df: pd.DataFrame, path: str | Path, sep: str = ",", float_format: str = "%.7g") -> None:
    """Atomically write ``df`` as csv/tsv without the index."""
    atomic_write(path, lambda f: f.write(df.to_csv(index=False, sep=sep, float_format=float_format).encode()))


def save_figure(fig, path: str | Path, **kwargs) -> None:
    """``fig.savefig`` atomically (the format is taken from ``path``'s suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kwargs))


_hits: Counter[str] = Counter()


def fault_point(site: str) -> None:
    """SIGKILL this process here if ``CHROMOFORMER_FAULT`` names ``site`` (and this is hit N)."""
    spec = os.environ.get("CHROMOFORMER_FAULT")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name != site:
        return
    _hits[site] += 1
    if _hits[site] == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)
