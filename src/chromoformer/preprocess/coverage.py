"""Read depth over regions, straight from BAM, BED/tagAlign or bigWig.

Default semantics equal the original route (``bedtools genomecov -ibam -bga`` on reads as
aligned): every mapped alignment covers [reference_start, reference_end), no extension,
no filtering, raw depth. Options:

* ``extend``: extend each read to this fragment length in its 3' direction
  (+ strand: [start, start + extend); - strand: [end - extend, end));
* ``shift``: move reads by this many bp towards their 3' end (after extension);
* ``min_mapq``; ``skip_duplicates`` (flag 0x400); ``skip_secondary`` (0x100, 0x800);
* ``qc-fail`` (0x200) and unmapped reads are never counted.

Reads of one chromosome are loaded once as sorted span arrays; the depth of a region is
a difference array over the spans that overlap it.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chromoformer.errors import SignalError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadOptions:
    extend: int = 0
    shift: int = 0
    min_mapq: int = 0
    skip_duplicates: bool = False
    skip_secondary: bool = False


@dataclass
class Spans:
    """Read spans of one chromosome, sorted by start: (n,) int64 starts and ends."""

    starts: np.ndarray
    ends: np.ndarray
    max_len: int = 0  # longest span, bounds the search window of :meth:`depth`

    @classmethod
    def build(cls, starts: np.ndarray, ends: np.ndarray, reverse: np.ndarray, opts: ReadOptions) -> Spans:
        starts, ends = starts.astype(np.int64), ends.astype(np.int64)
        if opts.extend:
            fwd_end = starts + opts.extend
            rev_start = ends - opts.extend
            starts = np.where(reverse, rev_start, starts)
            ends = np.where(reverse, ends, fwd_end)
        if opts.shift:
            d = np.where(reverse, -opts.shift, opts.shift)
            starts, ends = starts + d, ends + d
        starts = np.maximum(starts, 0)
        keep = ends > starts
        order = np.argsort(starts[keep], kind="stable")
        starts, ends = starts[keep][order], ends[keep][order]
        return cls(starts, ends, int((ends - starts).max()) if len(starts) else 0)

    def depth(self, start: int, end: int) -> np.ndarray:
        """Per-base depth over [start, end): (end - start,) int32."""
        lo = np.searchsorted(self.starts, start - self.max_len, side="left")
        hi = np.searchsorted(self.starts, end, side="left")
        s, e = self.starts[lo:hi], self.ends[lo:hi]
        hit = e > start
        s = np.clip(s[hit], start, end) - start
        e = np.clip(e[hit], start, end) - start
        diff = np.bincount(s, minlength=end - start + 1) - np.bincount(e, minlength=end - start + 1)
        return np.cumsum(diff[: end - start]).astype(np.int32)


class BamReads:
    """Reads of a coordinate-sorted, indexed BAM."""

    def __init__(self, path: str | Path, opts: ReadOptions | None = None) -> None:
        import pysam

        self.path, self.opts = Path(path), opts or ReadOptions()
        if not self.path.is_file():
            raise SignalError(f"{self.path}: BAM file not found")
        try:
            self.bam = pysam.AlignmentFile(str(self.path), "rb")
        except (ValueError, OSError) as e:
            raise SignalError(f"{self.path}: not a readable BAM file ({e})") from None
        if not self.bam.has_index():  # an index exists only for a coordinate-sorted BAM
            raise SignalError(
                f"{self.path}: BAM must be coordinate-sorted and indexed; run "
                f"'samtools sort -o sorted.bam {self.path.name} && samtools index sorted.bam'"
            )
        self.chroms = set(self.bam.references)

    def spans(self, chrom: str) -> Spans:
        skip = 0x4 | 0x200 | (0x400 if self.opts.skip_duplicates else 0)
        skip |= 0x100 | 0x800 if self.opts.skip_secondary else 0
        st, en, rev = [], [], []
        for r in self.bam.fetch(chrom):
            if r.flag & skip or r.mapping_quality < self.opts.min_mapq:
                continue
            st.append(r.reference_start)
            en.append(r.reference_end)
            rev.append(r.is_reverse)
        return Spans.build(np.array(st, np.int64), np.array(en, np.int64), np.array(rev, bool), self.opts)

    def total_reads(self, exclude: frozenset[str] = frozenset()) -> int:
        """Reads passing the filters on every chromosome not in ``exclude``."""
        return sum(len(self.spans(c).starts) for c in self.bam.references if c not in exclude)


class BedReads:
    """Reads from a BED/tagAlign file (chrom, start, end[, name, score, strand]); gzip allowed."""

    def __init__(self, path: str | Path, opts: ReadOptions | None = None) -> None:
        self.path, self.opts = Path(path), opts or ReadOptions()
        if not self.path.is_file():
            raise SignalError(f"{self.path}: read file not found")
        try:
            self.per = self._read()
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise SignalError(f"{self.path}: unreadable read file ({' '.join(str(e).split()) or 'truncated'})"
                              ) from None
        self.chroms = set(self.per)

    def _read(self) -> dict[str, tuple[list, list, list]]:
        opener = gzip.open if self.path.suffix == ".gz" else open
        per: dict[str, tuple[list, list, list]] = {}
        with opener(self.path, "rt") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                p = line.split("\t") if "\t" in line else line.split()
                try:
                    c, s, e = p[0], int(p[1]), int(p[2])
                except (IndexError, ValueError):
                    raise SignalError(f"{self.path}:{n}: expected chrom, start, end; got {line.strip()[:80]!r}"
                                      ) from None
                if s < 0 or e < s:
                    raise SignalError(f"{self.path}:{n}: read with start {s} > end {e} or negative start")
                a, b, r = per.setdefault(c, ([], [], []))
                a.append(s)
                b.append(e)
                r.append(len(p) > 5 and p[5].strip() == "-")
        return per

    def spans(self, chrom: str) -> Spans:
        a, b, r = self.per.get(chrom, ([], [], []))
        return Spans.build(np.array(a, np.int64), np.array(b, np.int64), np.array(r, bool), self.opts)

    def total_reads(self, exclude: frozenset[str] = frozenset()) -> int:
        """Reads on every chromosome not in ``exclude``."""
        return sum(len(v[0]) for c, v in self.per.items() if c not in exclude)


class BigWigSignal:
    """A bigWig track: its values are used as the depth (NaN = 0); read options do not apply."""

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
            out[lo - start : hi - start] = np.nan_to_num(v)
        return out


def open_signal(path: str | Path, opts: ReadOptions | None = None) -> BamReads | BedReads | BigWigSignal:
    """By extension: .bam, .bw/.bigWig/.bigwig, else a BED-like read file (.bed, .tagAlign, .gz)."""
    name = Path(path).name.lower()
    if name.endswith(".bam"):
        return BamReads(path, opts)
    if name.endswith((".bw", ".bigwig")):
        return BigWigSignal(path)
    return BedReads(path, opts)


def check_chromosomes(signal: BamReads | BedReads | BigWigSignal, wanted: set[str]) -> None:
    """Fail clearly on a chr1-vs-1 naming mismatch; warn on chromosomes with no reads."""
    missing = wanted - signal.chroms
    if missing and missing == wanted:
        alt = {c[3:] if c.startswith("chr") else f"chr{c}" for c in wanted}
        hint = " (they use the other 'chr' naming)" if alt & signal.chroms else ""
        raise SignalError(
            f"{signal.path}: none of the regions' chromosomes ({', '.join(sorted(wanted)[:4])}...) are in "
            f"the file{hint}; file has {', '.join(sorted(signal.chroms)[:4])}..."
        )
    for c in sorted(missing):
        log.warning("%s: no reads on %s; its regions get depth 0", signal.path, c)
