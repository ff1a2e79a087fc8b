"""Checked reads and path checks: every user-given input is read so that a bad file is one line.

Tables (:func:`read_table`: csv/tsv, gzip told by content and bounded against bombs, a NUL byte or a
missing line break named with its line), required files (:func:`require_file`: missing, empty, a
directory, a pipe or a device), and the checks of an output path against the inputs it would
overwrite (:func:`not_an_input`).
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import pickle
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from chromoformer.errors import UsageError

log = logging.getLogger(__name__)


def shown_cell(v: object) -> str:
    """A table cell for an error message, as the user wrote it: ``'NaN or empty'`` for a missing
    value, else its text quoted (``'inf'``, ``'high'``), never a numpy repr like np.float64(nan)."""
    return "NaN or empty" if pd.isna(v) else repr(str(v))


def numeric_column(table: pd.DataFrame, column: str, path: str | Path, error: type[Exception], *,
                   integer: bool = False, minimum: float | None = None, note: str = "") -> pd.Series:
    """``table[column]`` as numbers (int64 with ``integer``, else as parsed). The first cell that is
    not a finite number (an integer; >= ``minimum``) raises ``error`` naming ``path:line`` (the
    row after the header line), the row's ``gene_id`` (in a table that has one) and the cell as written, then
    ``note``."""
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
        gene = f" gene {table.gene_id.iloc[i]}:" if "gene_id" in table.columns else ""  # a table of genes, or not
        raise error(f"{path}:{i + 2}:{gene} {column} {shown_cell(table[column].iloc[i])} is not {what}{note}")
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


class _PlainUnpickler(pickle.Unpickler):
    """Admits plain containers, strings and numbers only: ``set``/``frozenset`` (pickled through a global) and
    nothing else; every other global (a class, a function: code to run) is refused."""

    ALLOWED = {(m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset")}  # py3 / py2 spelling

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's interface
        if (module, name) in self.ALLOWED:
            return {"set": set, "frozenset": frozenset}[name]
        raise pickle.UnpicklingError(f"refused global {module}.{name} (only plain data is read)")


def read_plain_pickle(path: str | Path, error: type[Exception], what: str, max_bytes: int = 4 << 30) -> object:
    """A pickle holding only dicts, lists, tuples, sets, strings, bytes, numbers, booleans and None, read with a
    restricted unpickler (never ``pickle.load``: a fetched pickle could run code); anything else is ``error``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    if path.stat().st_size > max_bytes:
        raise error(f"{path}: {what} is {path.stat().st_size:,} bytes, above the {max_bytes:,} read here")
    try:
        with open(path, "rb") as f:
            return _PlainUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            MemoryError) as e:
        raise error(f"{path}: not a plain-data pickle ({type(e).__name__}: {e})") from None


def npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` file declares, read from its header alone (nothing allocated, so a header
    declaring 10^12 values is checked, not loaded). ValueError for a file that is not an npy file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy format version {version} is not supported")
    return tuple(int(n) for n in shape), dtype
