"""Writing binned stores (see :mod:`chromoformer.data.store` for the format), and choosing a source.

A store is written into a temporary directory (space preallocated, so a full disk is an
error rather than SIGBUS) and renamed into place under a lock, so a crash never leaves
a half-written store and two builders never race. The cache of stores built from npy
directories is keyed by content; :func:`open_source` picks the fastest valid source.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import default_marks
from chromoformer.data.binning import F32_MAX
from chromoformer.data.metadata import Region
from chromoformer.data.store import FORMAT, VERSION, BinnedStore, file_sha256, manifest_sha256
from chromoformer.errors import StoreError, is_no_space
from chromoformer.files.atomic import check_free_space, current_umask, fault_point, no_space
from chromoformer.files.layouts import StoreFiles
from chromoformer.files.locking import FileLock

log = logging.getLogger(__name__)


def check_layout(out: str | Path, base: int, n_feats: int) -> None:
    if base < 1 or n_feats < 1:
        raise StoreError(f"{out}: the base bin must be >= 1 bp and n_feats >= 1, got {base} and {n_feats}")


def _clean_leftovers(target: Path) -> None:
    """Remove temporary and replaced copies of ``target`` left by killed builders (hold its lock)."""
    for p in (*target.parent.glob(f".{target.name}.tmp-*"), *target.parent.glob(f".{target.name}.old-*")):
        log.info("removing %s left by an interrupted build", p)
        shutil.rmtree(p, ignore_errors=True)


class StoreWriter:
    """Fill a new store in a temporary directory; :meth:`commit` renames it into place.

    ``sums`` is the (n_bins, n_feats) float32 memmap; ``offsets[name]`` the first row of
    each region. Use as a context manager: an exception discards everything.
    """

    def __init__(self, out: str | Path, regions: Sequence[Region], base: int, n_feats: int,
                 marks: Sequence[str] | None = None) -> None:
        self.out, self.regions, self.base, self.n_feats = Path(out), list(regions), base, n_feats
        check_layout(self.out, base, n_feats)
        self.marks = list(marks) if marks is not None else list(default_marks(n_feats))
        if len(self.marks) != n_feats or len(set(self.marks)) != n_feats:
            raise StoreError(f"{self.out}: need {n_feats} distinct mark names, got {self.marks}")
        self.offsets: dict[str, int] = {}
        off = 0
        for r in self.regions:
            if r.name in self.offsets:
                raise StoreError(f"{self.out}: region {r.name} listed twice")
            self.offsets[r.name] = off
            off += math.ceil(len(r) / base)
        self.n_bins = off
        self.lock = FileLock(StoreFiles(self.out).lock, f"store {self.out}", blocking=True)
        self.tmp: Path | None = None
        replaceable(self.out)

    def __enter__(self) -> StoreWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            _clean_leftovers(self.out)
            nbytes = self.n_bins * self.n_feats * 4
            check_free_space(self.out, nbytes + 100 * len(self.regions) + 2**20, "the binned store")
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
            self.sums = _preallocated_memmap(StoreFiles(self.tmp).sums, (self.n_bins, self.n_feats), self.out)
        except BaseException:
            self._discard()
            raise
        return self

    def put(self, region: Region, sums: np.ndarray, col: slice | int = slice(None)) -> None:
        """Write a region's base sums (the store is refused if any is NaN, infinite or negative)."""
        if not (np.isfinite(sums).all() and (sums >= 0).all()):
            raise StoreError(f"{self.out}: region {region.name}: NaN, infinite or negative signal; nothing written")
        if sums.max(initial=0) > F32_MAX:
            raise StoreError(f"{self.out}: region {region.name}: a base-bin sum of {sums.max():.3g} is past the "
                             "store's float32 range; is this a depth or coverage track? nothing written")
        off = self.offsets[region.name]
        self.sums[off : off + len(sums), col] = sums
        fault_point("store.region_written")

    def commit(self, info: dict | None = None) -> BinnedStore:
        assert self.tmp is not None
        try:
            self.sums.flush()
            del self.sums
            pd.DataFrame({"name": [r.name for r in self.regions],
                          "offset": [self.offsets[r.name] for r in self.regions],
                          "length": [len(r) for r in self.regions]}).to_csv(StoreFiles(self.tmp).regions, sep="\t",
                                                                            index=False)
            manifest = {"format": FORMAT, "version": VERSION, "base": self.base, "n_feats": self.n_feats,
                        "marks": self.marks, "normalisation": "raw read depth", "n_regions": len(self.regions),
                        "n_bins": self.n_bins, **(info or {})}
            tmp = StoreFiles(self.tmp)
            manifest["sha256"] = {**{f.name: file_sha256(f) for f in (tmp.sums, tmp.regions)},
                                  tmp.manifest.name: manifest_sha256(manifest)}
            tmp.manifest.write_text(json.dumps(manifest, indent=2))
            for p in self.tmp.iterdir():
                with open(p, "rb+") as f:
                    os.fsync(f.fileno())
        except OSError as e:
            if is_no_space(e):
                raise no_space(self.out, e) from None
            raise
        fault_point("store.before_rename")
        os.chmod(self.tmp, 0o777 & ~current_umask())
        _replace_dir(self.tmp, self.out)
        self.tmp = None
        return BinnedStore(self.out)

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self.lock.release()

    def __exit__(self, exc_type, *_: object) -> None:
        self._discard()


def _preallocated_memmap(path: Path, shape: tuple[int, int], target: Path) -> np.memmap:
    """A float32 .npy memmap whose blocks are reserved now (ENOSPC here, never SIGBUS later)."""
    with open(path, "wb+") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        header = f.tell()
        try:
            os.posix_fallocate(f.fileno(), 0, header + shape[0] * shape[1] * 4)
        except OSError as e:
            if is_no_space(e):
                raise no_space(target, e) from None
            raise
    return np.memmap(path, dtype="<f4", mode="r+", offset=header, shape=shape)


STORE_FILES = StoreFiles.names()


def replaceable(target: Path) -> None:
    """A store replaces its directory whole: refuse a file, or a folder holding anything but a store's files."""
    if target.is_file():
        raise StoreError(f"{target}: exists and is a file; give a directory for the store")
    if target.is_dir():
        extra = sorted(p.name for p in target.iterdir() if p.name not in STORE_FILES)
        if extra:
            raise StoreError(f"{target}: exists and holds files that are not a store's ({', '.join(extra[:3])}"
                             f"{'...' if len(extra) > 3 else ''}); a store replaces its folder whole, so give a new "
                             "or empty directory")


def _replace_dir(new: Path, target: Path) -> None:
    replaceable(target)  # again under the lock, just before the swap
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
