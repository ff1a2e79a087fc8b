"""Where region signal comes from: the original npy directory or the binned store.

Both give *base sums* (see :mod:`chromoformer.data.binning`) for a region, so the
dataset bins identically whichever is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from chromoformer.data.binning import F32_MAX, base_sums
from chromoformer.data.metadata import Gene, Region
from chromoformer.errors import DataError
from chromoformer.files.layouts import npy_file

LEGACY_PROMOTER_HALF = 20000  # original promoter files are TSS +- 20 kb


class RegionSource(Protocol):
    base: int
    n_feats: int
    marks: tuple[str, ...] | None  # None: unnamed rows (the original npy layout)

    def has(self, region: Region) -> bool: ...

    def check(self, region: Region, gene: str) -> None:
        """Raise :class:`DataError` naming the file and gene if the region is missing or malformed."""
        ...

    def region_sums(self, region: Region, crop: tuple[int, int] | None, gene: str) -> np.ndarray:
        """(ceil(L / base), F) float64 sums of region[crop] (bp offsets from its start)."""
        ...


class NpyDirSource:
    """The original layout: ``{npy_dir}/{chrom}:{start}-{end}.npy``, (F, L) per-base depth.

    Its rows carry no names (``marks`` is None): they are taken to be the model's marks in order.
    """

    marks = None

    def __init__(self, npy_dir: str | Path, n_feats: int = 7, base: int = 100) -> None:
        self.dir, self.n_feats, self.base = Path(npy_dir), n_feats, base
        if not self.dir.is_dir():
            raise DataError(f"{self.dir}: npy directory not found")

    def path(self, region: Region) -> Path:
        return npy_file(self.dir, region.name)

    def has(self, region: Region) -> bool:
        return self.path(region).is_file()

    def load(self, region: Region, gene: str | None, header_only: bool = False) -> np.ndarray:
        """The validated (F, L) array of a region (memory-mapped with ``header_only``)."""
        p = self.path(region)
        who = f"gene {gene}" if gene else f"region {region.name}"
        if not p.is_file():
            raise DataError(f"{p}: missing npy file for {who} (region {region.name})")
        try:
            x = np.load(p, allow_pickle=False, mmap_mode="r" if header_only else None)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{p}: unreadable npy file for {who}: {' '.join(str(e).split()) or 'empty file'}"
                            ) from None
        real = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
        if x.shape != (self.n_feats, len(region)) or not real:
            raise DataError(
                f"{p}: {who}: expected a numeric array of shape ({self.n_feats}, {len(region)}), "
                f"got {x.dtype} {x.shape}"
            )
        return x

    def check(self, region: Region, gene: str) -> None:
        self.load(region, gene, header_only=True)

    def region_sums(self, region: Region, crop: tuple[int, int] | None, gene: str | None) -> np.ndarray:
        x = self.load(region, gene)
        if not np.isfinite(x).all() or (x < 0).any():
            who = f"gene {gene}" if gene else f"region {region.name}"
            bad = "NaN or infinite" if not np.isfinite(x).all() else "negative"
            raise DataError(f"{self.path(region)}: {who}: {bad} values in the signal (read depth must be finite "
                            "and >= 0)")
        if crop is not None:
            x = x[:, crop[0] : crop[1]]
        sums = base_sums(x.astype(np.float32), self.base)
        if sums.max(initial=0) > F32_MAX:
            who = f"gene {gene}" if gene else f"region {region.name}"
            raise DataError(f"{self.path(region)}: {who}: values sum to {sums.max():.3g} in a {self.base}-bp bin, past "
                            "float32; is this a depth or coverage track?")
        return sums


def promoter_region(src: RegionSource, gene: Gene, w_prom: int) -> tuple[Region, tuple[int, int] | None]:
    """The stored region holding a gene's promoter window and the crop to apply.

    Prefers the original naming (TSS +- 20 kb, cropped to the centre ``w_prom``);
    falls back to a region of exactly TSS +- w_prom / 2.
    """
    half = w_prom // 2
    if gene.tss - LEGACY_PROMOTER_HALF >= 0:
        legacy = Region(gene.chrom, gene.tss - LEGACY_PROMOTER_HALF, gene.tss + LEGACY_PROMOTER_HALF)
        if src.has(legacy):
            lo = LEGACY_PROMOTER_HALF - half
            return legacy, (None if lo == 0 else (lo, lo + 2 * half))
    if gene.tss - half < 0:
        raise DataError(
            f"{gene.where}: TSS {gene.chrom}:{gene.tss} is within "
            f"{half} bp of the chromosome start; its promoter window cannot be extracted"
        )
    return Region(gene.chrom, gene.tss - half, gene.tss + half), None
