"""Which genome assembly an input file uses, and one assembly across all the inputs of a run.

Files with chromosome sizes (BAM/CRAM header, bigWig, ``.cool``, ``.hic``, a chrom-sizes file) are
named by their sizes: a chromosome whose length is that of a known assembly names it
(``chr1`` is 249,250,621 bp in hg19 and 248,956,422 bp in hg38). Annotations are named by
their header (``#!genome-build GRCh38.p14`` in Ensembl/RefSeq files, ``(GRCh38)`` in
GENCODE's description line, ``##genome-build``). Files that give neither (BED reads,
bedGraph, pcHi-C tables, expression tables) are not named; their contigs are checked
against the others where they are read.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from pathlib import Path

from chromoformer.data.genome import read_chrom_sizes

# Chromosome lengths (UCSC / GRC; identical between the UCSC and GRC names of one assembly).
KNOWN: dict[str, dict[str, int]] = {
    "hg18": {"1": 247_249_719, "2": 242_951_149, "X": 154_913_754},
    "hg19": {"1": 249_250_621, "2": 243_199_373, "X": 155_270_560},
    "hg38": {"1": 248_956_422, "2": 242_193_529, "X": 156_040_895},
    "mm9": {"1": 197_195_432, "2": 181_748_087, "X": 166_650_296},
    "mm10": {"1": 195_471_971, "2": 182_113_224, "X": 171_031_299},
    "mm39": {"1": 195_154_279, "2": 181_755_017, "X": 169_476_592},
}
ALIASES = {"grch37": "hg19", "hg19": "hg19", "grch38": "hg38", "hg38": "hg38", "ncbi36": "hg18", "hg18": "hg18",
           "grcm38": "mm10", "mm10": "mm10", "grcm39": "mm39", "mm39": "mm39", "ncbim37": "mm9", "mm9": "mm9"}
_BUILD = re.compile(r"\b(GRCh3[78]|GRCm3[89]|NCBI3[67]|NCBIM37|hg1[89]|hg38|mm9|mm10|mm39)(?:\.p\d+)?\b", re.I)


def canonical(name: str) -> str:
    """``GRCh38.p14`` / ``hg38`` -> ``hg38``; names not known are kept as given (lower case)."""
    base = name.strip().split(".p")[0].lower()
    return ALIASES.get(base, base)


def from_sizes(sizes: Mapping[str, int]) -> str | None:
    """The known assembly whose chromosome lengths the given ones match, or None."""
    plain = {str(c).removeprefix("chr"): int(n) for c, n in sizes.items()}
    hits = {name for name, ref in KNOWN.items() for c, n in ref.items() if plain.get(c) == n}
    return hits.pop() if len(hits) == 1 else None


def from_annotation(path: str | Path, max_lines: int = 200) -> str | None:
    """The assembly an annotation's header comment lines name, or None."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as f:
            for i, line in enumerate(f):
                if i >= max_lines or not line.startswith("#"):
                    break
                m = _BUILD.search(line)
                if m:
                    return canonical(m.group(1))
    except (OSError, EOFError):
        return None  # unreadable: the annotation reader reports it properly
    return None


def _sizes_of(path: Path) -> dict[str, int] | None:
    """Chromosome sizes from a file's header where the kind has one; None otherwise."""
    name = path.name.lower()
    try:
        if name.endswith((".bam", ".cram")):
            import pysam

            with pysam.AlignmentFile(str(path)) as f:
                return dict(zip(f.references, f.lengths, strict=True))
        if name.endswith((".bw", ".bigwig")):
            import pyBigWig

            bw = pyBigWig.open(str(path))
            try:
                return dict(bw.chroms())
            finally:
                bw.close()
        if name.partition("::")[0].endswith(".hic"):
            from chromoformer.preprocess.hic_files import hic_chromosomes

            return hic_chromosomes(str(path).partition("::")[0])
        if name.endswith((".cool", ".mcool")) or "::" in str(path):
            import cooler

            return {str(c): int(n) for c, n in cooler.Cooler(str(path)).chromsizes.items()}
        if name.endswith((".sizes", ".chrom.sizes", ".genome")):
            return read_chrom_sizes(path)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the step that reads it
        return None
    return None


def of_file(path: str | Path, kind: str) -> tuple[str | None, str]:
    """(assembly or None, the evidence in words) for an input of ``kind`` ('annotation' or other)."""
    path = Path(path)
    if kind == "annotation":
        a = from_annotation(path)
        return a, "its header"
    sizes = _sizes_of(path)
    if not sizes:
        return None, ""
    a = from_sizes(sizes)
    if a is None:
        return None, ""
    c = next(c for c in sizes if c.removeprefix("chr") in KNOWN[a] and sizes[c] == KNOWN[a][c.removeprefix("chr")])
    return a, f"{c} is {sizes[c]:,} bp"


