"""Where region signal comes from: the original npy directory or the binned store.

Both give *base sums* (see :mod:`chromoformer.data.binning`) for a region, so the
dataset bins identically whichever is used.

:func:`open_source` is the one signal opener: an npy directory or a binned store in, the fastest
:class:`RegionSource` out; :func:`build_store_from_npy` converts an npy directory once.

Every reader (training, prediction, interpretation, verify) opens signal here; building a store is the writer's
job (:mod:`chromoformer.data.store_writer`), which this module calls when a cache store is wanted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from chromoformer.config import default_marks
from chromoformer.data.binning import F32_MAX, base_sums
from chromoformer.data.metadata import Gene, Region, parse_region
from chromoformer.data.store import BinnedStore
from chromoformer.data.store_writer import StoreWriter, check_layout
from chromoformer.errors import DataError, StoreError
from chromoformer.files.checked import npy_header
from chromoformer.files.layouts import StoreFiles, npy_file
from chromoformer.progress import tqdm

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
            shape, dtype = npy_header(p)  # the declared shape is checked before anything is allocated
            ok = shape == (self.n_feats, len(region))
            x = np.load(p, allow_pickle=False, mmap_mode="r" if header_only else None) if ok else None
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{p}: unreadable npy file for {who}: {' '.join(str(e).split()) or 'empty file'}"
                            ) from None
        if x is None:
            raise DataError(f"{p}: {who}: expected a numeric array of shape ({self.n_feats}, {len(region)}), "
                            f"got {dtype} {shape}")
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
            if lo < 0 and not (gene.tss - half >= 0 and src.has(Region(gene.chrom, gene.tss - half, gene.tss + half))):
                raise DataError(f"{gene.where}: w_prom {w_prom} reads TSS +- {half} bp, but the signal holds "
                                f"TSS +- {LEGACY_PROMOTER_HALF} bp for this gene: lower w_prom to at most "
                                f"{2 * LEGACY_PROMOTER_HALF} or preprocess wider promoter windows")
            if lo >= 0:
                return legacy, (None if lo == 0 else (lo, lo + 2 * half))
    if gene.tss - half < 0:
        raise DataError(
            f"{gene.where}: TSS {gene.chrom}:{gene.tss} is within "
            f"{half} bp of the chromosome start; its promoter window cannot be extracted"
        )
    return Region(gene.chrom, gene.tss - half, gene.tss + half), None


log = logging.getLogger(__name__)


def open_source(
    npy_dir: str | Path,
    *, store: str | Path | None = None,
    build: bool = True,
    n_feats: int = 7,
    base: int = 100,
    marks: Sequence[str] | None = None,
) -> NpyDirSource | BinnedStore:
    """Pick the fastest source for a signal directory; input directories are never written to.

    * ``npy_dir`` that is itself a store is opened (and verified) as one;
    * ``store`` is used when it was built from ``npy_dir`` as it is now, at this ``base``
      with these ``marks``;
    * otherwise, with ``build``, ``store`` is (re)built from ``npy_dir`` and used;
    * otherwise (or without ``store``) the npy files (``n_feats`` rows each) are read directly.

    A store's base resolution must divide ``base`` (else :class:`StoreError`). Which of its
    marks a model reads is decided by :func:`chromoformer.data.marks.select_marks`.
    """
    npy_dir = Path(npy_dir)
    if StoreFiles.is_store(npy_dir):
        return _fits(BinnedStore(npy_dir), base)
    if not npy_dir.is_dir():
        raise StoreError(f"{npy_dir}: signal directory not found (expected an npy directory or a binned store)")
    if store is None:
        return NpyDirSource(npy_dir, n_feats, base)
    store = Path(store)
    names = list(marks) if marks is not None else list(default_marks(n_feats))
    if StoreFiles.is_store(store):
        try:
            s = BinnedStore(store)
            if ((s.base, s.n_feats, list(s.marks)) == (base, n_feats, names)
                    and s.manifest.get("source_fingerprint") == npy_fingerprint(npy_dir)):
                return s
            log.info("store %s was built from other files or settings than %s", store, npy_dir)
        except StoreError as e:
            log.warning("store %s is not usable (%s)", store, e)
    if not build:
        return NpyDirSource(npy_dir, n_feats, base)
    log.info("building binned store %s from %s (once)", store, npy_dir)
    return build_store_from_npy(npy_dir, store, base=base, n_feats=n_feats, marks=names)


def _fits(s: BinnedStore, base: int) -> BinnedStore:
    if base % s.base:
        raise StoreError(f"{s.path}: the store's base resolution is {s.base} bp, which does not divide the "
                         f"bin sizes' base {base} bp; rebuild it with a smaller --base")
    return s


def signal_marks(signal: str | Path) -> tuple[str, ...] | None:
    """The mark names a binned store records (None for an npy directory)."""
    if StoreFiles.is_store(signal):
        return BinnedStore(signal, verify=False).marks
    return None


def _npy_regions(npy_dir: Path) -> list[Region]:
    regions = []
    for p in sorted(npy_dir.glob("*.npy")):
        try:
            regions.append(parse_region(p.stem))
        except ValueError:
            log.warning("skipping %s: file name is not chrom:start-end.npy", p)
    return regions


def npy_fingerprint(npy_dir: str | Path) -> str:
    """Content fingerprint of an npy directory: sha256 over every ``*.npy`` name, size and mtime (ns).

    Overwriting, adding or removing a file changes it; reading ~20k file stats takes ~1 s.
    """
    h = hashlib.sha256()
    for p in sorted(Path(npy_dir).glob("*.npy")):
        st = p.stat()
        h.update(f"{p.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def build_store_from_npy(npy_dir: str | Path, out: str | Path, *, base: int = 100, n_feats: int = 7,
                         marks: Sequence[str] | None = None) -> BinnedStore:
    """Convert every ``chrom:start-end.npy`` of an original npy directory into a store."""
    check_layout(out, base, n_feats)  # before the source divides by the base
    src = NpyDirSource(npy_dir, n_feats=n_feats, base=base)
    fingerprint = npy_fingerprint(src.dir)
    regions = _npy_regions(src.dir)
    if not regions:
        raise StoreError(f"{src.dir}: no chrom:start-end.npy files to convert")
    with StoreWriter(out, regions, base, n_feats, marks) as w:
        for r in tqdm(regions, desc="binned store", unit="region"):
            w.put(r, src.region_sums(r, None, gene=None))
        return w.commit({"source": str(src.dir.resolve()), "n_npy_files": len(regions),
                         "source_fingerprint": fingerprint})


def default_store_path(npy_dir: str | Path, root: str | Path, *, base: int = 100, n_feats: int = 7,
                       marks: Sequence[str] | None = None) -> Path:
    """``root/.stores/{name}-{key}``, keyed by the npy directory's path, content fingerprint, base
    and marks: a changed input or setting gets a new store, never one rebuilt under another run's feet."""
    npy_dir = Path(npy_dir).resolve()
    names = ",".join(marks) if marks is not None else ",".join(default_marks(n_feats))
    key = f"{npy_dir}\n{npy_fingerprint(npy_dir)}\n{base}\n{n_feats}\n{names}"
    return Path(root) / ".stores" / f"{npy_dir.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
