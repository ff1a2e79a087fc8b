"""Read depth over regions, straight from BAM or BED/tagAlign reads (bigWig and bedGraph
values: :mod:`chromoformer.preprocess.track_readers`).

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

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chromoformer.errors import SignalError
from chromoformer.files.checked import open_text

ValueTrack = Any  # BigWigSignal | BedGraphSignal (chromoformer.preprocess.track_readers)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadOptions:
    extend: int = 0  # fragment length reads are extended to (0: as aligned)
    shift: int = 0  # bp towards the 3' end (negative: towards the 5' end)
    min_mapq: int = 0
    skip_duplicates: bool = False
    skip_secondary: bool = False

    def __post_init__(self) -> None:
        if self.extend < 0 or not 0 <= self.min_mapq <= 255:
            raise SignalError(f"--extend must be >= 0 and --min-mapq in 0..255; got {self.extend} and "
                              f"{self.min_mapq}")


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
        self.sizes = dict(zip(self.bam.references, self.bam.lengths, strict=True))

    def spans(self, chrom: str) -> Spans:
        import pysam

        skip = 0x4 | 0x200 | (0x400 if self.opts.skip_duplicates else 0)
        skip |= 0x100 | 0x800 if self.opts.skip_secondary else 0
        st, en, rev = [], [], []
        tid, last = self.bam.get_tid(chrom), -1
        quiet = pysam.set_verbosity(0)  # htslib's own lines would repeat the error below
        try:
            for r in self.bam.fetch(chrom):
                if r.reference_id != tid or r.reference_start < last:
                    raise OSError(f"read {r.query_name} out of place at {r.reference_name}:{r.reference_start + 1}")
                last = r.reference_start
                if r.flag & skip or r.mapping_quality < self.opts.min_mapq:
                    continue
                st.append(r.reference_start)
                en.append(r.reference_end)
                rev.append(r.is_reverse)
        except (OSError, ValueError) as e:
            with contextlib.suppress(OSError, ValueError):
                self.bam.close()  # now, not in pysam's finaliser, which would print its own traceback
            raise SignalError(f"{self.path}: unreadable on {chrom} ({' '.join(str(e).split()) or 'corrupt'}): the BAM "
                              f"is damaged or its index is another file's; re-index with 'samtools index {self.path}'"
                              f" (or re-create the BAM)") from None
        finally:
            pysam.set_verbosity(quiet)
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
        per: dict[str, tuple[list, list, list]] = {}
        with open_text(self.path) as f:
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

    def extent(self) -> dict[str, int]:
        """The furthest read end on each chromosome (this file has no header to give sizes)."""
        return {c: max(v[1]) for c, v in self.per.items() if v[1]}


def _is_bedgraph(path: Path) -> bool:
    """A bedGraph: by name (.bedgraph/.bdg), a 'type=bedGraph' track line, or 4 columns with a numeric 4th."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".bedgraph", ".bdg")):
        return True
    try:
        with open_text(path) as f:
            for _, line in zip(range(50), f, strict=False):
                if line.startswith("track"):
                    return "type=bedgraph" in line.lower()
                if not line.strip() or line.startswith(("#", "browser")):
                    continue
                p = line.split()
                try:
                    float(p[3])
                except (IndexError, ValueError):
                    return False
                return len(p) == 4
    except (OSError, EOFError, UnicodeDecodeError):
        return False  # BedReads reports the file
    return False


READ_OPTION_NAMES = {"extend": "--extend", "shift": "--shift", "min_mapq": "--min-mapq",
                     "skip_duplicates": "--skip-duplicates", "skip_secondary": "--skip-secondary"}


def unused_options(opts: ReadOptions, kind: str) -> list[str]:
    """The read options set in ``opts`` that a file of ``kind`` cannot apply."""
    cannot = {"bam": (), "reads": ("min_mapq", "skip_duplicates", "skip_secondary"),
              "values": tuple(READ_OPTION_NAMES)}[kind]
    default = ReadOptions()
    return [READ_OPTION_NAMES[k] for k in cannot if getattr(opts, k) != getattr(default, k)]


def open_signal(path: str | Path, opts: ReadOptions | None = None) -> BamReads | BedReads | ValueTrack:
    """.bam: reads; .bw/.bigWig: values; bedGraph (by name or content): values; else BED/tagAlign reads.

    Read options a file kind cannot apply (MAPQ/flags for BED reads, any for value tracks)
    are logged as warnings naming the file.
    """
    from chromoformer.preprocess.track_readers import BedGraphSignal, BigWigSignal

    p, opts = Path(path), opts or ReadOptions()
    name = p.name.lower()
    if name.endswith(".bam"):
        return BamReads(p, opts)
    if name.endswith((".bw", ".bigwig")):
        sig, kind = BigWigSignal(p), "values"
    elif p.is_file() and _is_bedgraph(p):
        sig, kind = BedGraphSignal(p), "values"
    else:
        sig, kind = BedReads(p, opts), "reads"
    bad = unused_options(opts, kind)
    if bad:
        what = "signal values (used as they are)" if kind == "values" else "reads without mapping quality or flags"
        log.warning("%s holds %s: %s do(es) not apply to it", p, what, ", ".join(bad))
    return sig


def check_chromosomes(signal: BamReads | BedReads | ValueTrack, wanted: set[str],
                      chrom_sizes: dict[str, int] | None = None, sizes_source: str = "the chromosome sizes") -> None:
    """Fail clearly on a chr1-vs-1 naming mismatch or sizes that contradict the file's header (another
    assembly); warn on chromosomes with no reads."""
    header = getattr(signal, "sizes", None)
    if chrom_sizes and header:
        differ = [c for c in sorted(wanted) if c in header and c in chrom_sizes and header[c] != chrom_sizes[c]]
        if differ:
            c = differ[0]
            raise SignalError(f"{signal.path}: {c} is {header[c]} bp in its header but {chrom_sizes[c]} bp in "
                              f"{sizes_source} ({len(differ)} chromosome(s) differ): the files come from different "
                              "assemblies (e.g. hg19 vs hg38)")
    is_reads = hasattr(signal, "spans")
    extent = signal.extent() if chrom_sizes and not header and hasattr(signal, "extent") else {}
    past = [c for c in sorted(extent) if c in chrom_sizes and extent[c] > chrom_sizes[c]]
    if past:
        c, what = past[0], "reads run" if is_reads else "intervals run"
        more = f", as on {len(past) - 1} other chromosome(s)" if len(past) > 1 else ""
        raise SignalError(f"{signal.path}: {what} to {extent[c]} on {c}, past its end ({chrom_sizes[c]} bp in "
                          f"{sizes_source}){more}: the files come from different assemblies")
    missing = wanted - signal.chroms
    if not signal.chroms:
        raise SignalError(f"{signal.path}: the file holds no {'reads' if is_reads else 'intervals'}")
    if missing and missing == wanted:
        alt = {c[3:] if c.startswith("chr") else f"chr{c}" for c in wanted}
        hint = " (they use the other 'chr' naming)" if alt & signal.chroms else ""
        raise SignalError(
            f"{signal.path}: none of the regions' chromosomes ({', '.join(sorted(wanted)[:4])}...) are in "
            f"the file{hint}; file has {', '.join(sorted(signal.chroms)[:4])}..."
        )
    for c in sorted(missing):
        log.warning("%s: no %s on %s; its regions get 0", signal.path, "reads" if is_reads else "values", c)
