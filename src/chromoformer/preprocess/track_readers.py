"""Signal tracks whose values are used as the depth: bigWig and bedGraph (never read as reads).

Both give ``depth(chrom, start, end)`` -> (end - start,) float32, 0 where the track has
no value (NaN or no interval), the same contract as a read file's depth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chromoformer.errors import SignalError
from chromoformer.files.checked import open_text


class BigWigSignal:
    """A bigWig track: its values are used as the depth (NaN = 0)."""

    def __init__(self, path: str | Path) -> None:
        import pyBigWig

        self.path = Path(path)
        if not self.path.is_file():
            raise SignalError(f"{self.path}: bigWig file not found")
        try:
            self.bw = pyBigWig.open(str(self.path))
        except RuntimeError:
            self.bw = None
        if self.bw is None or not self.bw.isBigWig():
            raise SignalError(f"{self.path}: not a bigWig file")
        self.sizes = self.bw.chroms()
        self.chroms = set(self.sizes)

    def depth(self, chrom: str, start: int, end: int) -> np.ndarray:
        size = self.sizes[chrom]
        out = np.zeros(end - start, np.float32)
        lo, hi = max(start, 0), min(end, size)
        if hi > lo:
            v = np.asarray(self.bw.values(chrom, lo, hi, numpy=True), dtype=np.float32)
            out[lo - start : hi - start] = np.where(np.isnan(v), np.float32(0), v)  # NaN = no data; inf stays
        return out


class BedGraphSignal:
    """A bedGraph (chrom, start, end, value; gzip allowed): the value covers [start, end)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SignalError(f"{self.path}: bedGraph file not found")
        per: dict[str, list[tuple[int, int, float]]] = {}
        try:
            with open_text(self.path) as f:
                for n, line in enumerate(f, 1):
                    if not line.strip() or line.startswith(("#", "track", "browser")):
                        continue
                    p = line.split()
                    try:
                        c, s, e, v = p[0], int(p[1]), int(p[2]), float(p[3])
                    except (IndexError, ValueError):
                        raise SignalError(f"{self.path}:{n}: expected chrom, start, end, value; got "
                                          f"{line.strip()[:80]!r}") from None
                    if s < 0 or e <= s or not np.isfinite(v) or v < 0:
                        raise SignalError(f"{self.path}:{n}: interval {s}-{e} must have 0 <= start < end and a "
                                          f"finite value >= 0, got {p[3]}")
                    per.setdefault(c, []).append((s, e, v))
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise SignalError(f"{self.path}: unreadable bedGraph ({' '.join(str(e).split()) or 'truncated'})"
                              ) from None
        self.per = {}
        for c, rows in per.items():
            a = np.array(sorted(rows), dtype=np.float64)
            if len(a) > 1 and (a[1:, 0] < a[:-1, 1]).any():
                raise SignalError(f"{self.path}: overlapping intervals on {c} (a bedGraph has one value per base)")
            self.per[c] = (a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].astype(np.float32))
        self.chroms = set(self.per)

    def extent(self) -> dict[str, int]:
        """The furthest interval end on each chromosome (a bedGraph has no header to give sizes)."""
        return {c: int(e.max()) for c, (_, e, _) in self.per.items()}

    def depth(self, chrom: str, start: int, end: int) -> np.ndarray:
        out = np.zeros(end - start, np.float32)
        if chrom not in self.per:
            return out
        s, e, v = self.per[chrom]
        i0, i1 = np.searchsorted(e, start, "right"), np.searchsorted(s, end, "left")
        for a, b, x in zip(s[i0:i1], e[i0:i1], v[i0:i1], strict=True):
            out[max(a, start) - start : min(b, end) - start] = x
        return out
