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

from chromoformer.errors import AnnotationError, SampleSheetError
from chromoformer.io import open_text, require_file

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
            from chromoformer.preprocess.contacts import hic_chromosomes

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


def check_one_assembly(inputs: list[tuple[str, str | Path, str]], declared: str | None, where: str) -> str | None:
    """All ``(label, path, kind)`` inputs that can be named must name one assembly (the declared one, if any).

    Returns the assembly (declared, else the one found, else None). Raises
    :class:`SampleSheetError` with one line naming the two disagreeing inputs.
    """
    want = canonical(declared) if declared else None
    first: tuple[str, str, str] | None = None  # (assembly, label, evidence)
    for label, path, kind in inputs:
        a, why = of_file(path, kind)
        if a is None:
            continue
        if want is not None and a != want:
            said = declared if declared == want else f"{declared} ({want})"
            raise SampleSheetError(f"{where}: {label} ({Path(path).name}) is {a} ({why}) but the sheet says "
                                   f"assembly {said}; use files of one assembly (or lift them over)")
        if first is not None and a != first[0]:
            raise SampleSheetError(f"{where}: mixed assemblies: {first[1]} is {first[0]} ({first[2]}) but {label} "
                                   f"({Path(path).name}) is {a} ({why}); use files of one assembly (or lift them over)")
        first = first or (a, f"{label} ({Path(path).name})", why)
    return want or (first[0] if first else None)


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    """A ``chrom<TAB>size`` file (further columns, '#' lines and gzip allowed); sizes must be positive integers."""
    path = require_file(path, "chromosome sizes file", AnnotationError)
    sizes: dict[str, int] = {}
    line_of: dict[str, int] = {}
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                p = line.split()
                if len(p) < 2 or not p[1].isdigit() or int(p[1]) < 1:
                    raise AnnotationError(f"{path}:{n}: expected 'chrom<TAB>size' with a positive integer size, "
                                          f"got {line.strip()[:80]!r}")
                if p[0] in sizes:
                    raise AnnotationError(f"{path}:{n}: chromosome {p[0]} is listed twice (first on line "
                                          f"{line_of[p[0]]})")
                sizes[p[0]], line_of[p[0]] = int(p[1]), n
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: unreadable chromosome sizes file ({' '.join(str(e).split()) or 'truncated'})"
                              ) from None
    if not sizes:
        raise AnnotationError(f"{path}: no chromosome sizes in the file (one 'chrom<TAB>size' per line)")
    return sizes
