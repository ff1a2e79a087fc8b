"""Readers of Hi-C contact matrices: ``.cool``/``.mcool`` (cooler) and ``.hic`` (hictkpy).

Both give what :func:`chromoformer.preprocess.hic_scores.interactions_from_cool` needs, in global
bin ids: the fixed bin size, the bins table, each chromosome's bin extent, multiplicative
balancing weights (NaN = masked bin) and the upper-triangle pixels in chunks.

* ``.cool``: ``weight`` names a column of the bins table (``cooler balance`` writes
  ``weight``). ``FILE.mcool::resolutions/N`` picks a resolution.
* ``.hic``: ``weight`` names one of the file's normalisations (``KR``, ``SCALE``, ``VC``,
  ``VC_SQRT``...; .hic vectors are divisive and are inverted here). ``FILE.hic::resolutions/N``
  picks a resolution; a file with a single resolution needs none.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import ChromoformerError, InteractionError

CHUNK = 2_000_000  # pixels per chunk


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


class CoolContacts:
    """A ``.cool`` file or ``.mcool::resolutions/N`` URI (pixels streamed in chunks of ``CHUNK``)."""

    def __init__(self, path: str | Path) -> None:
        try:
            import cooler
        except ImportError:
            raise InteractionError(f"{path}: reading .cool/.mcool needs cooler (pip install cooler)") from None
        self.path = str(path)
        try:
            self.clr = cooler.Cooler(self.path)
        except Exception as e:  # h5py/cooler raise their own types for missing or corrupt files
            raise InteractionError(f"{path}: not a readable .cool file or .mcool::resolutions/N URI "
                                   f"({_short(e)})") from None
        self.binsize = self.clr.binsize
        self.chromsizes = {str(c): int(n) for c, n in self.clr.chromsizes.items()}
        self.bins = self.clr.bins()[["chrom", "start", "end"]][:]

    def close(self) -> None:
        """Nothing to end (cooler opens the file per read)."""

    def extent(self, chrom: str) -> tuple[int, int]:
        return tuple(self.clr.extent(chrom))

    def weights(self, name: str) -> np.ndarray:
        cols = list(self.clr.bins().columns)
        if name not in cols:
            raise InteractionError(f"{self.path}: no balancing weights column {name!r} (bins columns: "
                                   f"{', '.join(cols)}); balance the file ('cooler balance FILE') or pass --weight "
                                   "none for raw counts")
        return np.asarray(self.clr.bins()[name][:], dtype=float)

    def pixels(self, chroms: list[str], k: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(bin1, bin2, count) chunks of all pixels (the caller keeps the cis ones within ``k`` bins)."""
        px = self.clr.pixels()
        for p0 in range(0, self.clr.info["nnz"], CHUNK):
            c = px[p0 : p0 + CHUNK]
            yield c.bin1_id.to_numpy(), c.bin2_id.to_numpy(), c["count"].to_numpy()


class HicContacts:
    """A Juicer ``.hic`` file (any version hictkpy reads); one chromosome's diagonal band at a time.

    hictkpy runs in a child process of its own, ended by :meth:`close`: hictkpy 1.4 starts a
    logger thread that keeps a CPU core busy for the rest of the life of the process that
    imported it (measured: 3.0 s of CPU per 3 s idle) and warns that a later ``fork()`` of that
    process is unsafe. This process never imports it.
    """

    def __init__(self, path: str | Path) -> None:
        if importlib.util.find_spec("hictkpy") is None:
            raise InteractionError(f"{path}: reading .hic needs hictkpy (pip install 'hictkpy[pyarrow]')")
        self.path = str(path)
        self.file, _, res = self.path.partition("::")
        if not Path(self.file).is_file():
            raise InteractionError(f"{self.file}: .hic file not found")
        self._child: HicChild | None = HicChild()
        try:
            self.binsize, self.chromsizes, self.bins = self._call(_hic_header, self.file, self.path, res)
        except BaseException:
            self.close()
            raise
        first = self.bins.groupby("chrom", sort=False, observed=True).cumcount() == 0
        starts = dict(zip(self.bins.chrom[first].astype(str), np.flatnonzero(first.to_numpy()), strict=True))
        want = self.binsize
        self._extent = {c: (int(starts[c]), int(starts[c]) - (-n // want)) for c, n in self.chromsizes.items()}

    def _call(self, fn, *args):  # noqa: ANN001, ANN202 - one of the _hic_* functions below
        if self._child is None:
            raise InteractionError(f"{self.path}: the .hic reader was closed")
        return self._child.call(fn, *args)

    def close(self) -> None:
        """End the hictkpy child process (idempotent)."""
        if self._child is not None:
            self._child.close()
            self._child = None

    def __del__(self) -> None:
        if getattr(self, "_child", None) is not None:
            self.close()

    def extent(self, chrom: str) -> tuple[int, int]:
        return self._extent[chrom]

    def weights(self, name: str) -> np.ndarray:
        w = self._call(_hic_weights, self.file, self.path, self.binsize, name)
        with np.errstate(divide="ignore"):
            return np.where(np.isfinite(w) & (w > 0), 1.0 / w, np.nan)

    def pixels(self, chroms: list[str], k: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for c in chroms:
            yield self._call(_hic_band, self.file, self.binsize, c, k)


# ---- run in the hictkpy child process (see HicContacts) --------------------------------------
def _hic_header(file: str, uri: str, res: str) -> tuple[int, dict[str, int], pd.DataFrame]:
    """The resolution to read (``res``: '', or 'resolutions/N'), chromosome sizes and bins table."""
    import hictkpy

    try:
        resolutions = [int(r) for r in hictkpy.MultiResFile(file).resolutions()]
    except Exception as e:  # hictkpy raises RuntimeError for anything unreadable
        raise InteractionError(f"{file}: not a readable .hic file ({_short(e)})") from None
    if res:
        try:
            want = int(res.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            raise InteractionError(f"{uri}: expected FILE.hic::resolutions/N") from None
        if want not in resolutions:
            raise InteractionError(f"{uri}: no resolution {want} bp; the file has {', '.join(map(str, resolutions))}")
    elif len(resolutions) == 1:
        want = resolutions[0]
    else:
        raise InteractionError(f"{file}: several resolutions ({', '.join(map(str, resolutions))}); pick one "
                               f"with {file}::resolutions/N")
    f = hictkpy.File(file, want)
    sizes = {str(c): int(n) for c, n in f.chromosomes().items()}
    return want, sizes, f.bins().to_df()[["chrom", "start", "end"]]


def _hic_weights(file: str, uri: str, res: int, name: str) -> np.ndarray:
    """The divisive normalisation vector ``name`` (NaN where masked)."""
    import hictkpy

    f = hictkpy.File(file, res)
    avail = list(f.avail_normalizations())
    if name not in avail:
        raise InteractionError(f"{uri}: no normalisation {name!r} in this .hic (it has: {', '.join(avail) or 'none'}); "
                               "pass --weight with one of them, or none for raw counts")
    return np.asarray(f.weights(name, divisive=True), dtype=float)


def _hic_band(file: str, res: int, chrom: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin1, bin2, count) of ``chrom``'s pixels within ``k`` bins of the diagonal."""
    import hictkpy

    df: pd.DataFrame = hictkpy.File(file, res).fetch(chrom, diagonal_band_width=k + 1).to_df()
    return df.bin1_id.to_numpy(np.int64), df.bin2_id.to_numpy(np.int64), df["count"].to_numpy()


def hic_chromosomes(file: str) -> dict[str, int]:
    """A .hic file's chromosome sizes, read in a short-lived child process (see :class:`HicContacts`)."""
    child = HicChild()
    try:
        return child.call(_hic_chromosomes, file)
    finally:
        child.close()


def _hic_chromosomes(file: str) -> dict[str, int]:
    import hictkpy

    return {str(c): int(n) for c, n in hictkpy.MultiResFile(file).chromosomes().items()}


def open_contacts(path: str | Path) -> CoolContacts | HicContacts:
    """The reader for a ``.hic`` (by name) or a ``.cool``/``.mcool`` file."""
    return HicContacts(path) if str(path).partition("::")[0].lower().endswith(".hic") else CoolContacts(path)


def is_contact_matrix(path: str) -> bool:
    """Whether ``path`` names a Hi-C matrix (.cool, .mcool, .hic or a ``::`` URI) rather than a table."""
    return path.partition("::")[0].lower().endswith((".cool", ".mcool", ".hic")) or "::" in path


class HicChild:
    """A Python process that runs this module's ``_hic_*`` functions by name, pickled over its pipes.

    A plain subprocess (not multiprocessing): it never imports the caller's ``__main__``, so
    a user's script needs no ``__name__`` guard, and it ends when its stdin closes (with
    :meth:`close`, or when this process dies). Errors come back as :class:`InteractionError`.
    """

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen([sys.executable, "-c", "from chromoformer.preprocess.hic_files import _serve; "
                                      "_serve()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def call(self, fn: Callable, *args: object) -> object:
        """``fn(*args)`` (one of this module's ``_hic_*`` functions) run in the child."""
        try:
            pickle.dump((fn.__name__, args), self.proc.stdin)
            self.proc.stdin.flush()
            ok, value = pickle.load(self.proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise InteractionError(f"{args[0] if args else ''}: the .hic reader process died (exit "
                                   f"{self.proc.poll()}; out of memory?)") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.proc.stdout.close()


_SERVED = {"_hic_header", "_hic_weights", "_hic_band", "_hic_chromosomes"}


def _serve() -> None:
    """The child's loop (see :class:`HicChild`): one pickled (name, args) in, one (ok, value) out."""
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    inp = sys.stdin.buffer
    while True:
        try:
            name, args = pickle.load(inp)
        except EOFError:
            return
        try:
            if name not in _SERVED:
                raise InteractionError(f"no .hic reader function {name!r}")
            out = (True, globals()[name](*args))
        except ChromoformerError as e:
            out = (False, e)
        except Exception as e:  # noqa: BLE001 - hictkpy's own errors, e.g. a file damaged past its header
            out = (False, InteractionError(f"{args[0] if args else ''}: unreadable .hic ({_short(e)})"))
        pickle.dump(out, proto)
        proto.flush()
