"""Readers of Hi-C contact matrices: ``.cool``/``.mcool`` (cooler) and ``.hic`` (hictkpy).

Both give what :func:`chromoformer.preprocess.hic.interactions_from_cool` needs, in global
bin ids: the fixed bin size, the bins table, each chromosome's bin extent, multiplicative
balancing weights (NaN = masked bin) and the upper-triangle pixels in chunks.

* ``.cool``: ``weight`` names a column of the bins table (``cooler balance`` writes
  ``weight``). ``FILE.mcool::resolutions/N`` picks a resolution.
* ``.hic``: ``weight`` names one of the file's normalisations (``KR``, ``SCALE``, ``VC``,
  ``VC_SQRT``...; .hic vectors are divisive and are inverted here). ``FILE.hic::resolutions/N``
  picks a resolution; a file with a single resolution needs none.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import InteractionError

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
    """A Juicer ``.hic`` file (any version hictkpy reads); one chromosome's diagonal band at a time."""

    def __init__(self, path: str | Path) -> None:
        try:
            import hictkpy
        except ImportError:
            raise InteractionError(f"{path}: reading .hic needs hictkpy (pip install 'hictkpy[pyarrow]')") from None
        self.path = str(path)
        file, _, res = self.path.partition("::")
        if not Path(file).is_file():
            raise InteractionError(f"{file}: .hic file not found")
        try:
            resolutions = [int(r) for r in hictkpy.MultiResFile(file).resolutions()]
        except Exception as e:  # hictkpy raises RuntimeError for anything unreadable
            raise InteractionError(f"{file}: not a readable .hic file ({_short(e)})") from None
        if res:
            try:
                want = int(res.rstrip("/").rsplit("/", 1)[-1])
            except ValueError:
                raise InteractionError(f"{self.path}: expected FILE.hic::resolutions/N") from None
            if want not in resolutions:
                raise InteractionError(f"{self.path}: no resolution {want} bp; the file has "
                                       f"{', '.join(map(str, resolutions))}")
        elif len(resolutions) == 1:
            want = resolutions[0]
        else:
            raise InteractionError(f"{file}: several resolutions ({', '.join(map(str, resolutions))}); pick one "
                                   f"with {file}::resolutions/N")
        self.f = hictkpy.File(file, want)
        self.binsize = want
        self.chromsizes = {str(c): int(n) for c, n in self.f.chromosomes().items()}
        self.bins = self.f.bins().to_df()[["chrom", "start", "end"]]
        first = self.bins.groupby("chrom", sort=False, observed=True).cumcount() == 0
        starts = dict(zip(self.bins.chrom[first].astype(str), np.flatnonzero(first.to_numpy()), strict=True))
        self._extent = {c: (int(starts[c]), int(starts[c]) - (-n // want)) for c, n in self.chromsizes.items()}

    def extent(self, chrom: str) -> tuple[int, int]:
        return self._extent[chrom]

    def weights(self, name: str) -> np.ndarray:
        avail = list(self.f.avail_normalizations())
        if name not in avail:
            raise InteractionError(f"{self.path}: no normalisation {name!r} in this .hic (it has: "
                                   f"{', '.join(avail) or 'none'}); pass --weight with one of them, or none for raw "
                                   "counts")
        w = np.asarray(self.f.weights(name, divisive=True), dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(np.isfinite(w) & (w > 0), 1.0 / w, np.nan)

    def pixels(self, chroms: list[str], k: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for c in chroms:
            df: pd.DataFrame = self.f.fetch(c, diagonal_band_width=k + 1).to_df()
            yield df.bin1_id.to_numpy(np.int64), df.bin2_id.to_numpy(np.int64), df["count"].to_numpy()


def open_contacts(path: str | Path) -> CoolContacts | HicContacts:
    """The reader for a ``.hic`` (by name) or a ``.cool``/``.mcool`` file."""
    return HicContacts(path) if str(path).partition("::")[0].lower().endswith(".hic") else CoolContacts(path)


def is_contact_matrix(path: str) -> bool:
    """Whether ``path`` names a Hi-C matrix (.cool, .mcool, .hic or a ``::`` URI) rather than a table."""
    return path.partition("::")[0].lower().endswith((".cool", ".mcool", ".hic")) or "::" in path
