"""Compact pre-binned store: every region's base-bin sums in one memory-mapped array.

Layout of a store directory::

    manifest.json   format, version, base (bp), n_feats, marks, normalisation, source
    sums.npy        (total_base_bins, n_feats) float32, regions back to back
    regions.tsv     name, offset (row in sums.npy), length (bp)

Sums of integer read depths are exact in float32 up to 2**24 per base bin
(depth <= 167,772 at base 100), so bins at every multiple of ``base`` are derived
without loss. The store is written into a temporary directory and renamed into
place, so a crash never leaves a half-written store behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from chromoformer.config import MARKS
from chromoformer.data.metadata import Region, parse_region
from chromoformer.data.sources import DataError, NpyDirSource
from chromoformer.io import current_umask

log = logging.getLogger(__name__)
FORMAT = "chromoformer-binned-store"
VERSION = 1


class BinnedStore:
    """Read-only view of a store directory (see module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        mf = self.path / "manifest.json"
        if not mf.is_file():
            raise DataError(f"{mf}: not a chromoformer binned store (no manifest.json)")
        self.manifest = json.loads(mf.read_text())
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != VERSION:
            raise DataError(
                f"{mf}: unsupported store format {self.manifest.get('format')!r} "
                f"version {self.manifest.get('version')!r}"
            )
        self.base = int(self.manifest["base"])
        self.n_feats = int(self.manifest["n_feats"])
        self.sums = np.load(self.path / "sums.npy", mmap_mode="r")
        idx = pd.read_csv(self.path / "regions.tsv", sep="\t", dtype={"name": str})
        spans = zip(idx["offset"].astype(int), idx["length"].astype(int), strict=True)
        self.index: dict[str, tuple[int, int]] = dict(zip(idx["name"], spans, strict=True))

    def __len__(self) -> int:
        return len(self.index)

    def has(self, region: Region) -> bool:
        return region.name in self.index

    def check(self, region: Region, gene: str) -> None:
        if region.name not in self.index:
            src = self.manifest.get("source", "")
            hint = f" (built from {src}: is {region.name}.npy missing there?)" if src else ""
            raise DataError(f"{self.path}: region {region.name} of gene {gene} is not in the store{hint}")

    def region_sums(self, region: Region, crop: tuple[int, int] | None, gene: str) -> np.ndarray:
        self.check(region, gene)
        off, length = self.index[region.name]
        n = math.ceil(length / self.base)
        lo, hi = 0, n
        if crop is not None:
            if crop[0] % self.base or (crop[1] % self.base and crop[1] != length):
                raise DataError(
                    f"{self.path}: gene {gene}: promoter crop {crop} is not aligned to the store's "
                    f"{self.base}-bp base bins; rebuild the store with a smaller --base"
                )
            lo, hi = crop[0] // self.base, math.ceil(crop[1] / self.base)
        return np.asarray(self.sums[off + lo : off + hi], dtype=np.float64)


class StoreWriter:
    """Fill a new store in a temporary directory; :meth:`commit` renames it into place.

    ``sums`` is the (total_base_bins, n_feats) float32 memmap; ``offsets[name]`` the first
    row of each region. Use as a context manager: an exception discards everything.
    """

    def __init__(self, out: str | Path, regions: list[Region], base: int, n_feats: int) -> None:
        self.out, self.regions, self.base, self.n_feats = Path(out), regions, base, n_feats
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        self.offsets: dict[str, int] = {}
        off = 0
        for r in regions:
            if r.name in self.offsets:
                raise DataError(f"{self.out}: region {r.name} listed twice")
            self.offsets[r.name] = off
            off += math.ceil(len(r) / base)
        self.sums = np.lib.format.open_memmap(self.tmp / "sums.npy", mode="w+", dtype=np.float32,
                                              shape=(off, n_feats))

    def put(self, region: Region, sums: np.ndarray, col: slice | int = slice(None)) -> None:
        off = self.offsets[region.name]
        self.sums[off : off + len(sums), col] = sums

    def commit(self, info: dict | None = None) -> BinnedStore:
        self.sums.flush()
        del self.sums
        pd.DataFrame({"name": [r.name for r in self.regions], "offset": [self.offsets[r.name] for r in self.regions],
                      "length": [len(r) for r in self.regions]}).to_csv(self.tmp / "regions.tsv", sep="\t", index=False)
        manifest = {"format": FORMAT, "version": VERSION, "base": self.base, "n_feats": self.n_feats,
                    "marks": list(MARKS[: self.n_feats]) if self.n_feats <= len(MARKS) else None,
                    "normalisation": "raw read depth", "n_regions": len(self.regions), **(info or {})}
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        os.chmod(self.tmp, 0o777 & ~current_umask())
        _replace_dir(self.tmp, self.out)
        return BinnedStore(self.out)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, *_: object) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _replace_dir(new: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _npy_regions(npy_dir: Path) -> list[Region]:
    regions = []
    for p in sorted(npy_dir.glob("*.npy")):
        try:
            regions.append(parse_region(p.stem))
        except ValueError:
            log.warning("skipping %s: file name is not chrom:start-end.npy", p)
    return regions


def build_store_from_npy(npy_dir: str | Path, out: str | Path, base: int = 100, n_feats: int = 7) -> BinnedStore:
    """Convert every ``chrom:start-end.npy`` of an original npy directory into a store."""
    src = NpyDirSource(npy_dir, n_feats=n_feats, base=base)
    regions = _npy_regions(src.dir)
    if not regions:
        raise DataError(f"{src.dir}: no chrom:start-end.npy files to convert")
    with StoreWriter(out, regions, base, n_feats) as w:
        for r in tqdm(regions, desc="binned store", unit="region"):
            w.put(r, src.region_sums(r, None, gene=None))
        return w.commit({"source": str(src.dir.resolve()), "n_npy_files": len(regions)})


def store_matches_npy(store: BinnedStore, npy_dir: str | Path) -> bool:
    """True when the store holds exactly the regions of ``npy_dir``."""
    return {r.name for r in _npy_regions(Path(npy_dir))} == set(store.index)


def default_store_path(npy_dir: str | Path, root: str | Path) -> Path:
    """``root/.stores/{name}-{hash of the absolute npy path}``: shared by runs, never inside the input."""
    npy_dir = Path(npy_dir).resolve()
    digest = hashlib.sha1(str(npy_dir).encode()).hexdigest()[:10]
    return Path(root) / ".stores" / f"{npy_dir.name}-{digest}"


def open_source(
    npy_dir: str | Path,
    store: str | Path | None = None,
    build: bool = True,
    n_feats: int = 7,
    base: int = 100,
) -> NpyDirSource | BinnedStore:
    """Pick the fastest source for a signal directory; input directories are never written to.

    * ``npy_dir`` that is itself a store is opened as one;
    * ``store`` is used when it holds exactly ``npy_dir``'s regions at this ``base``;
    * otherwise, with ``build``, ``store`` is (re)built from ``npy_dir`` and used;
    * otherwise (or without ``store``) the npy files are read directly.
    """
    npy_dir = Path(npy_dir)
    if (npy_dir / "manifest.json").is_file():
        return BinnedStore(npy_dir)
    if store is None:
        return NpyDirSource(npy_dir, n_feats, base)
    store = Path(store)
    if (store / "manifest.json").is_file():
        s = BinnedStore(store)
        if s.base == base and s.n_feats == n_feats and store_matches_npy(s, npy_dir):
            return s
        log.info("store %s does not match %s", store, npy_dir)
    if not build:
        return NpyDirSource(npy_dir, n_feats, base)
    log.info("building binned store %s from %s (once)", store, npy_dir)
    return build_store_from_npy(npy_dir, store, base, n_feats)
