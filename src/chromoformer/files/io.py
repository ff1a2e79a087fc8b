"""Crash-safe file output: temp file beside the target, fsync, rename.

A crash, a kill or a full disk never leaves a truncated file under a final name, and an
existing file is replaced only by a complete new one. Temporaries are named
``.{name}.XXXX.tmp`` and locked while being written, so a later write of the same
target removes the ones a killed process left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from chromoformer.errors import DiskSpaceError, UsageError, is_no_space
from chromoformer.files.faults import fault_point

log = logging.getLogger(__name__)

STALE_AFTER_S = 60.0  # an unlocked temporary older than this belongs to a dead writer
FULL_BELOW = 2**20  # a write that fails with less free space than this failed for lack of space


def shown_cell(v: object) -> str:
    """A table cell for an error message, as the user wrote it: ``'NaN or empty'`` for a missing
    value, else its text quoted (``'inf'``, ``'high'``), never a numpy repr like np.float64(nan)."""
    return "NaN or empty" if pd.isna(v) else repr(str(v))


def numeric_column(table: pd.DataFrame, column: str, path: str | Path, error: type[Exception], *,
                   integer: bool = False, minimum: float | None = None, note: str = "") -> pd.Series:
    """``table[column]`` as numbers (int64 with ``integer``, else as parsed). The first cell that is
    not a finite number (an integer; >= ``minimum``) raises ``error`` naming ``path:line`` (the
    row after the header line), the row's ``gene_id`` and the cell as written, then ``note``."""
    v = pd.to_numeric(table[column], errors="coerce")
    x = v.to_numpy(dtype=float)
    bad = ~np.isfinite(x)
    if integer:
        bad |= x % 1 != 0
    if minimum is not None:
        bad |= x < minimum
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = ("an integer" if integer else "a finite number") + (f" >= {minimum:g}" if minimum is not None else "")
        raise error(f"{path}:{i + 2}: gene {table.gene_id.iloc[i]}: {column} {shown_cell(table[column].iloc[i])} "
                    f"is not {what}{note}")
    return v.astype("int64") if integer else v


def not_an_input(out: str | Path, inputs: Iterable[str | Path | None], option: str = "-o", *,
                 folders: Iterable[str | Path | None] = ()) -> None:
    """Refuse an output that is one of the command's inputs, a folder holding one (it would be
    overwritten or replaced) or a path inside one of its input ``folders`` (an npy folder, a
    store, an interpretation: it would change the input): :class:`UsageError` before any work.
    Paths are compared resolved (symlinks, ``..``)."""
    o = Path(os.path.realpath(out))  # unlike Path.resolve, never raises on a symlink loop
    folders = [f for f in folders if f is not None]
    for i in [*inputs, *folders]:
        if i is None:
            continue
        p = Path(os.path.realpath(i))
        if o == p or o in p.parents:
            raise UsageError(f"{option} {out}: writing there would overwrite the input {i}; give another output path")
    for i in folders:
        p = Path(os.path.realpath(i))
        if p.is_dir() and p in o.parents:
            raise UsageError(f"{option} {out}: is inside the input folder {i}; writing there would change the input; "
                             "give an output path outside it")


GUNZIP_LIMIT = 16 * 2**30  # bytes a gzip input may expand to
BOMB_RATIO, BOMB_AFTER = 500, 64 * 2**20  # text compresses 5-20x; past 64 MB, 500x is a gzip bomb


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


class _Bounded(gzip.GzipFile):
    """A gzip stream that stops with :class:`UsageError` once it expands past :data:`GUNZIP_LIMIT`
    bytes, or :data:`BOMB_RATIO` times its compressed size past :data:`BOMB_AFTER` bytes."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(str(path), "rb")
        self._where, self._packed, self._out = str(path), max(os.path.getsize(path), 1), 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self._out += len(data)
        if self._out > GUNZIP_LIMIT or (self._out > BOMB_AFTER and self._out > BOMB_RATIO * self._packed):
            raise UsageError(f"{self._where}: expands to more than {self._out / 2**20:,.0f} MB from "
                             f"{self._packed / 2**20:,.1f} MB compressed (a gzip bomb?); refused")
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size if size is not None and size >= 0 else 2**16)

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def open_text(path: str | Path) -> IO[str]:
    """A text file, gzip-compressed or not, told by its first bytes (not its name); a gzip one
    is bounded (see :class:`_Bounded`)."""
    import io

    return io.TextIOWrapper(_Bounded(path)) if is_gzip(path) else open(path)


def require_file(path: str | Path, what: str, error: type[Exception]) -> Path:
    """``path`` as a Path if it is a readable file; else ``error`` saying what is wrong with it."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{path}: {what} is a symbolic link loop") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise error(f"{path}: {what} not found") from None
        raise error(f"{path}: {what} cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: {what} is not a regular file (a pipe, socket or device is read more than once "
                    "here); write it to a file first")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: {what} is not readable (permission denied)")
    return path


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


def read_table(path: str | Path, error: type[Exception], what: str, **read_csv) -> pd.DataFrame:
    """``pd.read_csv(path, **read_csv)``; any way the file is unreadable (empty, malformed, not
    text, a corrupt gzip) becomes ``error`` naming the file and ``what`` it should have been. A NUL
    byte, which pandas' parser takes for the end of a field (``a\\0b`` read as ``a``), is refused
    with its line."""
    try:
        if (line := _nul_line(path)) is not None:
            raise _Nul(line)
        if is_gzip(path):  # told by content, not by a .gz name (and bounded)
            with _Bounded(path) as f:
                table = pd.read_csv(f, **read_csv)
        else:
            plain = str(path).endswith((".gz", ".gzip"))  # a .gz name on an uncompressed file
            table = pd.read_csv(path, compression=None if plain else "infer", **read_csv)
    except _Nul as e:
        raise error(f"{path}:{e.args[0]}: holds a NUL byte (a control character): not a readable {what}") from None
    except pd.errors.EmptyDataError:
        raise error(f"{path}: not a readable {what}: empty file") from None
    except UsageError as e:  # a gzip bomb
        raise error(str(e)) from None
    except (ValueError, OSError, EOFError) as e:  # ParserError, UnicodeDecodeError and bad usecols are ValueErrors
        raise error(f"{path}: not a readable {what} ({' '.join(str(e).split())[:200]})") from None
    if not _ends_with_line_break(path):
        log.warning("%s: the %s does not end with a line break: if the file was cut short, its last row is "
                    "incomplete (check it)", path, what)
    return table


class _Nul(Exception):
    """A NUL byte at line ``args[0]`` (raised and caught inside :func:`read_table`)."""


def _nul_line(path: str | Path) -> int | None:
    """The 1-based line of the first NUL byte in a file (decompressed if gzip), or None."""
    line = 1
    with _Bounded(path) if is_gzip(path) else open(path, "rb") as f:
        while chunk := f.read(2**20):
            if (at := chunk.find(b"\0")) >= 0:
                return line + chunk.count(b"\n", 0, at)
            line += chunk.count(b"\n")
    return None


def _ends_with_line_break(path: str | Path) -> bool:
    """Whether an uncompressed file's last byte is a newline (gzip files are not looked into)."""
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":
            return True
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) in (b"\n", b"\r")


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
