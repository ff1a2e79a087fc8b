"""Compact pre-binned store: every region's base-bin sums in one memory-mapped array.

Layout of a store directory::

    manifest.json   format, version, base (bp), n_feats, marks, n_regions, n_bins,
                    sha256 of sums.npy and regions.tsv, source fingerprint, provenance
    sums.npy        (n_bins, n_feats) float32, regions back to back in regions.tsv order
    regions.tsv     name, offset (row in sums.npy), length (bp)

Sums of integer read depths are exact in float32 up to 2**24 per base bin
(depth <= 167,772 at base 100), so bins at every multiple of ``base`` are derived
without loss.

A store is self-validating: opening one checks the manifest schema, the array's shape
and dtype, that regions tile the array exactly, the checksums, and that every sum is
finite and non-negative; anything else is a :class:`StoreError` naming the file. It is
written into a temporary directory (space preallocated, so a full disk is an error
rather than SIGBUS) and renamed into place under a lock, so a crash never leaves a
half-written store and two builders never race.
"""

from __future__ import annotations

import hashlib
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

from chromoformer.config import MARKS
from chromoformer.data.metadata import Region, parse_region
from chromoformer.data.sources import NpyDirSource
from chromoformer.errors import StoreError, is_no_space
from chromoformer.faults import fault_point
from chromoformer.io import check_free_space, current_umask, no_space
from chromoformer.locking import FileLock
from chromoformer.progress import tqdm

log = logging.getLogger(__name__)
FORMAT = "chromoformer-binned-store"
VERSION = 2
_CHUNK = 1 << 22  # rows per chunk when verifying


def default_marks(n_feats: int) -> list[str]:
    """The original's 7 mark names, or ``mark1..markN`` for another count."""
    return list(MARKS) if n_feats == len(MARKS) else [f"mark{i + 1}" for i in range(n_feats)]


def manifest_sha256(m: dict) -> str:
    """Checksum of a manifest's own fields (all but ``sha256``), so edits to base or marks are caught."""
    body = {k: v for k, v in m.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


class BinnedStore:
    """Read-only, validated view of a store directory (see module docstring)."""

    def __init__(self, path: str | Path, verify: bool = True) -> None:
        self.path = Path(path)
        mf = self.path / "manifest.json"
        if not mf.is_file():
            raise StoreError(f"{mf}: not a chromoformer binned store (no manifest.json)")
        self.manifest = m = _read_manifest(mf)
        self.base, self.n_feats, self.marks = m["base"], m["n_feats"], tuple(m["marks"])
        if verify:
            if manifest_sha256(m) != m["sha256"]["manifest.json"]:
                raise StoreError(f"{mf}: its fields were edited after the store was built (checksum differs); "
                                 "rebuild the store")
            for name in ("sums.npy", "regions.tsv"):
                p = self.path / name
                if not p.is_file():
                    raise StoreError(f"{p}: missing from the store")
                if file_sha256(p) != m["sha256"][name]:
                    raise StoreError(f"{p}: checksum differs from the manifest: the store was modified or is "
                                     "corrupt; rebuild it")
        try:
            self.sums = np.load(self.path / "sums.npy", mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise StoreError(f"{self.path / 'sums.npy'}: unreadable ({' '.join(str(e).split())}); rebuild the store"
                             ) from None
        if self.sums.shape != (m["n_bins"], self.n_feats) or self.sums.dtype != np.float32:
            raise StoreError(f"{self.path / 'sums.npy'}: expected float32 ({m['n_bins']}, {self.n_feats}), got "
                             f"{self.sums.dtype} {self.sums.shape}; rebuild the store")
        self.index = _read_index(self.path / "regions.tsv", self.base, m["n_regions"], m["n_bins"])
        if verify:
            self._check_values()

    def _check_values(self) -> None:
        for lo in range(0, len(self.sums), _CHUNK):
            c = np.asarray(self.sums[lo : lo + _CHUNK])
            if not (np.isfinite(c).all() and (c >= 0).all()):
                bad = lo + int(np.nonzero(~(np.isfinite(c) & (c >= 0)).all(axis=1))[0][0])
                region = next(n for n, (o, ln) in self.index.items() if o <= bad < o + math.ceil(ln / self.base))
                raise StoreError(f"{self.path / 'sums.npy'}: region {region}: NaN, infinite or negative signal")

    def __len__(self) -> int:
        return len(self.index)

    def has(self, region: Region) -> bool:
        return region.name in self.index

    def check(self, region: Region, gene: str) -> None:
        if region.name not in self.index:
            src = self.manifest.get("source", "")
            hint = f" (built from {src}: is {region.name}.npy missing there?)" if src else ""
            raise StoreError(f"{self.path}: region {region.name} of gene {gene} is not in the store{hint}")

    def region_sums(self, region: Region, crop: tuple[int, int] | None, gene: str) -> np.ndarray:
        self.check(region, gene)
        off, length = self.index[region.name]
        n = math.ceil(length / self.base)
        lo, hi = 0, n
        if crop is not None:
            if crop[0] % self.base or (crop[1] % self.base and crop[1] != length):
                raise StoreError(
                    f"{self.path}: gene {gene}: promoter crop {crop} is not aligned to the store's "
                    f"{self.base}-bp base bins; rebuild the store with a smaller --base"
                )
            lo, hi = crop[0] // self.base, math.ceil(crop[1] / self.base)
        return np.asarray(self.sums[off + lo : off + hi], dtype=np.float64)


def _read_manifest(mf: Path) -> dict:
    try:
        m = json.loads(mf.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{mf}: not valid JSON ({e}); rebuild the store") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise StoreError(f"{mf}: not a chromoformer binned store manifest")
    if m.get("version") != VERSION:
        raise StoreError(f"{mf}: store format version {m.get('version')!r}, this chromoformer reads version "
                         f"{VERSION}; rebuild the store (build-store or preprocess signals)")

    def want(key: str, ok: bool, what: str) -> None:
        if not ok:
            raise StoreError(f"{mf}: '{key}' must be {what}, got {m.get(key)!r}")

    for key in ("base", "n_feats", "n_regions", "n_bins"):
        v = m.get(key)
        want(key, isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a positive integer")
    marks = m.get("marks")
    want("marks", isinstance(marks, list) and len(marks) == m["n_feats"] and all(isinstance(x, str) for x in marks)
         and len(set(marks)) == len(marks), f"a list of {m['n_feats']} distinct mark names")
    sha = m.get("sha256")
    want("sha256", isinstance(sha, dict) and all(isinstance(sha.get(k), str) for k in (
        "sums.npy", "regions.tsv", "manifest.json")), "checksums of sums.npy, regions.tsv and the manifest")
    return m


def _read_index(path: Path, base: int, n_regions: int, n_bins: int) -> dict[str, tuple[int, int]]:
    """name -> (offset, length); regions must tile sums.npy back to back, in order."""
    try:
        idx = pd.read_csv(path, sep="\t", dtype={"name": str})
        offsets, lengths = idx["offset"].to_numpy(), idx["length"].to_numpy()
    except (ValueError, KeyError, OSError, pd.errors.EmptyDataError) as e:
        raise StoreError(f"{path}: unreadable region index ({' '.join(str(e).split())}); rebuild the store") from None
    if len(idx) != n_regions:
        raise StoreError(f"{path}: {len(idx)} regions, the manifest says {n_regions}; rebuild the store")
    if not (np.issubdtype(offsets.dtype, np.integer) and np.issubdtype(lengths.dtype, np.integer)):
        raise StoreError(f"{path}: offsets and lengths must be integers; rebuild the store")
    rows = -(-lengths // base)
    expect = np.concatenate([[0], np.cumsum(rows)[:-1]])
    bad = np.nonzero((lengths < 1) | (offsets != expect))[0]
    if len(bad) or int(rows.sum()) != n_bins:
        i = int(bad[0]) if len(bad) else len(idx) - 1
        raise StoreError(f"{path}:{i + 2}: region {idx['name'].iloc[i]}: offset {offsets[i]} / length {lengths[i]} "
                         "do not tile sums.npy; the index was edited or is corrupt: rebuild the store")
    index: dict[str, tuple[int, int]] = {}
    for i, (name, off, ln) in enumerate(zip(idx["name"], offsets.tolist(), lengths.tolist(), strict=True)):
        try:
            r = parse_region(str(name))
        except ValueError as e:
            raise StoreError(f"{path}:{i + 2}: {e}") from None
        if len(r) != ln or name in index:
            raise StoreError(f"{path}:{i + 2}: region {name}: length {ln} does not match its name, or it is "
                             "listed twice; rebuild the store")
        index[name] = (off, ln)
    return index


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
        self.marks = list(marks) if marks is not None else default_marks(n_feats)
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
        self.lock = FileLock(self.out.parent / f".{self.out.name}.lock", f"store {self.out}", blocking=True)
        self.tmp: Path | None = None

    def __enter__(self) -> StoreWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            _clean_leftovers(self.out)
            nbytes = self.n_bins * self.n_feats * 4
            check_free_space(self.out, nbytes + 100 * len(self.regions) + 2**20, "the binned store")
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
            self.sums = _preallocated_memmap(self.tmp / "sums.npy", (self.n_bins, self.n_feats), self.out)
        except BaseException:
            self._discard()
            raise
        return self

    def put(self, region: Region, sums: np.ndarray, col: slice | int = slice(None)) -> None:
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
                          "length": [len(r) for r in self.regions]}).to_csv(self.tmp / "regions.tsv", sep="\t",
                                                                            index=False)
            manifest = {"format": FORMAT, "version": VERSION, "base": self.base, "n_feats": self.n_feats,
                        "marks": self.marks, "normalisation": "raw read depth", "n_regions": len(self.regions),
                        "n_bins": self.n_bins, **(info or {})}
            manifest["sha256"] = {**{n: file_sha256(self.tmp / n) for n in ("sums.npy", "regions.tsv")},
                                  "manifest.json": manifest_sha256(manifest)}
            (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
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


def npy_fingerprint(npy_dir: str | Path) -> str:
    """Content fingerprint of an npy directory: sha256 over every ``*.npy`` name, size and mtime (ns).

    Overwriting, adding or removing a file changes it; reading ~20k file stats takes ~1 s.
    """
    h = hashlib.sha256()
    for p in sorted(Path(npy_dir).glob("*.npy")):
        st = p.stat()
        h.update(f"{p.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def build_store_from_npy(npy_dir: str | Path, out: str | Path, base: int = 100, n_feats: int = 7,
                         marks: Sequence[str] | None = None) -> BinnedStore:
    """Convert every ``chrom:start-end.npy`` of an original npy directory into a store."""
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


def default_store_path(npy_dir: str | Path, root: str | Path, base: int = 100, n_feats: int = 7) -> Path:
    """``root/.stores/{name}-{key}``, keyed by the npy directory's path, content fingerprint, base
    and mark count: a changed input gets a new store, never one rebuilt under another run's feet."""
    npy_dir = Path(npy_dir).resolve()
    key = f"{npy_dir}\n{npy_fingerprint(npy_dir)}\n{base}\n{n_feats}"
    return Path(root) / ".stores" / f"{npy_dir.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def open_source(
    npy_dir: str | Path,
    store: str | Path | None = None,
    build: bool = True,
    n_feats: int = 7,
    base: int = 100,
    marks: Sequence[str] | None = None,
) -> NpyDirSource | BinnedStore:
    """Pick the fastest source for a signal directory; input directories are never written to.

    * ``npy_dir`` that is itself a store is opened (and verified) as one;
    * ``store`` is used when it was built from ``npy_dir`` as it is now, at this ``base``;
    * otherwise, with ``build``, ``store`` is (re)built from ``npy_dir`` and used;
    * otherwise (or without ``store``) the npy files are read directly.

    The source must have ``n_feats`` marks (named ``marks``, when given) and a base
    resolution dividing ``base``; anything else is a :class:`StoreError`.
    """
    npy_dir = Path(npy_dir)
    if (npy_dir / "manifest.json").is_file():
        return _fits(BinnedStore(npy_dir), n_feats, base, marks)
    if not npy_dir.is_dir():
        raise StoreError(f"{npy_dir}: signal directory not found (expected an npy directory or a binned store)")
    if store is None:
        return NpyDirSource(npy_dir, n_feats, base)
    store = Path(store)
    if (store / "manifest.json").is_file():
        try:
            s = BinnedStore(store)
            if (s.base, s.n_feats) == (base, n_feats) and s.manifest.get("source_fingerprint") == npy_fingerprint(
                    npy_dir):
                return _fits(s, n_feats, base, marks)
            log.info("store %s was built from other files or settings than %s", store, npy_dir)
        except StoreError as e:
            log.warning("store %s is not usable (%s)", store, e)
    if not build:
        return NpyDirSource(npy_dir, n_feats, base)
    log.info("building binned store %s from %s (once)", store, npy_dir)
    return _fits(build_store_from_npy(npy_dir, store, base, n_feats, marks), n_feats, base, marks)


def _fits(s: BinnedStore, n_feats: int, base: int, marks: Sequence[str] | None) -> BinnedStore:
    if s.n_feats != n_feats:
        raise StoreError(f"{s.path}: the store has {s.n_feats} marks ({', '.join(s.marks)}) but the model "
                         f"expects {n_feats} (config n_feats)")
    if base % s.base:
        raise StoreError(f"{s.path}: the store's base resolution is {s.base} bp, which does not divide the "
                         f"bin sizes' base {base} bp; rebuild it with a smaller --base")
    if marks is not None and tuple(marks) != s.marks:
        raise StoreError(f"{s.path}: the store's marks ({', '.join(s.marks)}) differ from the model's "
                         f"({', '.join(marks)}) in {'order' if set(marks) == set(s.marks) else 'names'}")
    return s
