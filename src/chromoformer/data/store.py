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
finite and non-negative; anything else is a :class:`StoreError` naming the file.
Writing, building from npy files, the cache and :func:`open_source` are in
:mod:`chromoformer.data.store_writer`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.metadata import Region, parse_region
from chromoformer.errors import StoreError
from chromoformer.files.layouts import StoreFiles

log = logging.getLogger(__name__)
FORMAT = "chromoformer-binned-store"
VERSION = 2
_CHUNK = 1 << 22  # rows per chunk when verifying


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
        files = StoreFiles(self.path)
        mf = files.manifest
        if not mf.is_file():
            raise StoreError(f"{mf}: not a chromoformer binned store (no manifest.json)")
        self.manifest = m = _read_manifest(mf)
        self.base, self.n_feats, self.marks = m["base"], m["n_feats"], tuple(m["marks"])
        if verify:
            if manifest_sha256(m) != m["sha256"][mf.name]:
                raise StoreError(f"{mf}: its fields were edited after the store was built (checksum differs); "
                                 "rebuild the store")
            for p in (files.sums, files.regions):
                if not p.is_file():
                    raise StoreError(f"{p}: missing from the store")
                if file_sha256(p) != m["sha256"][p.name]:
                    raise StoreError(f"{p}: checksum differs from the manifest: the store was modified or is "
                                     "corrupt; rebuild it")
        self.sums = self._map_sums()
        self.index = _read_index(files.regions, self.base, m["n_regions"], m["n_bins"])
        if verify:
            self._check_values()

    def _check_values(self) -> None:
        for lo in range(0, len(self.sums), _CHUNK):
            c = np.asarray(self.sums[lo : lo + _CHUNK])
            if not (np.isfinite(c).all() and (c >= 0).all()):
                bad = lo + int(np.nonzero(~(np.isfinite(c) & (c >= 0)).all(axis=1))[0][0])
                region = next(n for n, (o, ln) in self.index.items() if o <= bad < o + math.ceil(ln / self.base))
                raise StoreError(f"{StoreFiles(self.path).sums}: region {region}: NaN, infinite or negative signal")

    def __getstate__(self) -> dict:
        """Pickled without the memory-mapped sums (a loader worker maps the file again, never a copy)."""
        state = self.__dict__.copy()
        state["sums"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.sums = self._map_sums()

    def _map_sums(self) -> np.memmap:
        """``sums.npy`` memory-mapped, checked to be float32 (n_bins, n_feats) as the manifest says."""
        p, n = StoreFiles(self.path).sums, self.manifest["n_bins"]
        try:
            sums = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise StoreError(f"{p}: unreadable ({' '.join(str(e).split())}); rebuild the store") from None
        if sums.shape != (n, self.n_feats) or sums.dtype != np.float32:
            raise StoreError(f"{p}: expected float32 ({n}, {self.n_feats}), got {sums.dtype} {sums.shape}; "
                             "rebuild the store")
        return sums

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
    want("sha256", isinstance(sha, dict) and all(isinstance(sha.get(k), str) for k in
         StoreFiles.names()), "checksums of the sums, the region index and the manifest")
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
