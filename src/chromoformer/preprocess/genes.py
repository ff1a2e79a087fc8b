"""Gene annotation -> one TSS per gene, and chromosome-wise CV splits (SPEC §5.2).

TSS rule (the original's ``ensg2tss``): per gene, transcripts are ordered longest genomic
span first (ties by transcript id); the gene's TSS is the first one's 5' end, 0-based:
``start`` for '+' genes and ``end - 1`` for '-' genes. All transcript TSSs are kept in
``tss_all`` because neighbours are collected over every TSS of a gene.

Inputs: GTF/GFF (``transcript`` features; gzip allowed) or a UCSC refGene table.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import pandas as pd

from chromoformer.config import DEFAULT_CONFIG
from chromoformer.errors import AnnotationError
from chromoformer.io import read_table, require_file

log = logging.getLogger(__name__)

SPLITS: dict[int, tuple[str, ...]] = {
    1: ("chr1", "chr6", "chr5", "chr8", "chr14", "chrY"),
    2: ("chr7", "chr10", "chr11", "chr12", "chr15", "chr21"),
    3: ("chr2", "chr3", "chr4", "chr16", "chr18", "chr20"),
    4: ("chr9", "chr13", "chr17", "chr19", "chr22", "chrX"),
}


def chrom_split(chrom: str, splits: dict[int, tuple[str, ...]] = SPLITS) -> int | None:
    """CV split of a chromosome ('chr1' or '1' naming); None for chromosomes in no split."""
    name = chrom if chrom.startswith("chr") else f"chr{chrom}"
    return next((k for k, v in splits.items() if name in v), None)


_ATTR = re.compile(r'(\S+)\s+"([^"]*)"|(\S+)=([^;]+)')


def _attrs(s: str) -> dict[str, str]:
    return {m.group(1) or m.group(3): m.group(2) if m.group(1) else m.group(4) for m in _ATTR.finditer(s)}


def read_gtf_transcripts(path: str | Path, biotype: str | None = "protein_coding") -> pd.DataFrame:
    """Transcripts of a GTF/GFF: gene_id, gene_name, transcript_id, chrom, start (0-based), end, strand."""
    path = require_file(path, "annotation file", AnnotationError)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        rows = _gtf_rows(path, opener, biotype)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: unreadable annotation ({' '.join(str(e).split()) or 'truncated'})") from None
    if not rows:
        raise AnnotationError(f"{path}: no transcript features{f' of biotype {biotype}' if biotype else ''}")
    return pd.DataFrame(rows, columns=["gene_id", "gene_name", "transcript_id", "chrom", "start", "end", "strand"])


def _gtf_rows(path: Path, opener, biotype: str | None) -> list[tuple]:
    rows = []
    with opener(path, "rt") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            p = line.rstrip("\n").split("\t")
            if len(p) < 9:
                raise AnnotationError(f"{path}:{n}: expected 9 tab-separated GTF columns, got {len(p)}")
            if p[2] not in ("transcript", "mRNA"):
                continue
            a = _attrs(p[8])
            btype = a.get("transcript_type") or a.get("transcript_biotype") or a.get("gene_type") or a.get(
                "gene_biotype")
            if biotype and btype != biotype:
                continue
            gid = a.get("gene_id") or a.get("Parent", "").replace("gene:", "")
            if not gid:
                raise AnnotationError(f"{path}:{n}: transcript without gene_id")
            try:
                start, end = int(p[3]) - 1, int(p[4])
            except ValueError:
                raise AnnotationError(f"{path}:{n}: start/end must be integers, got {p[3]!r}, {p[4]!r}") from None
            if start < 0 or end <= start:
                raise AnnotationError(f"{path}:{n}: transcript {gid}: start {p[3]} > end {p[4]} or start < 1")
            if p[6] not in ("+", "-"):
                raise AnnotationError(f"{path}:{n}: transcript {gid}: strand must be '+' or '-', got {p[6]!r}")
            rows.append((gid, a.get("gene_name", gid), a.get("transcript_id", a.get("ID", f"line{n}")),
                         p[0], start, end, p[6]))
    return rows


def read_refgene_transcripts(path: str | Path) -> pd.DataFrame:
    """UCSC refGene (bin, name, chrom, strand, txStart, txEnd, ..., name2 in column 13); NM_ = coding."""
    path = require_file(path, "annotation", AnnotationError)
    df = read_table(path, AnnotationError, "refGene table", sep="\t", header=None, comment="#")
    if df.shape[1] < 13:
        raise AnnotationError(f"{path}: expected the 16-column UCSC refGene table, got {df.shape[1]} columns")
    df = df[df[1].astype(str).str.startswith("NM_")]
    for c in (4, 5):
        if not pd.api.types.is_integer_dtype(df[c]):
            raise AnnotationError(f"{path}: column {c + 1} (txStart/txEnd) must hold integers")
    bad = df[(df[4] < 0) | (df[5] <= df[4]) | ~df[3].isin(["+", "-"])]
    if len(bad):
        raise AnnotationError(f"{path}: transcript {bad[1].iloc[0]}: txStart > txEnd, negative, or bad strand")
    return pd.DataFrame({"gene_id": df[12], "gene_name": df[12], "transcript_id": df[1], "chrom": df[2],
                         "start": df[4].astype(int), "end": df[5].astype(int), "strand": df[3]})


def genes_from_transcripts(
    tx: pd.DataFrame, w_prom: int = DEFAULT_CONFIG.w_prom, chrom_sizes: dict[str, int] | None = None,
    splits: dict[int, tuple[str, ...]] = SPLITS,
) -> pd.DataFrame:
    """One row per gene: gene_id, gene_name, chrom, start (TSS), end, strand, split, tss_all.

    Genes on chromosomes outside the splits, and genes whose promoter window (TSS +- w_prom/2)
    leaves the chromosome, are dropped with a logged count.
    """
    tx = tx.assign(span=tx.end - tx.start, tss=tx.start.where(tx.strand == "+", tx.end - 1))
    tx = tx.sort_values(["gene_id", "span", "transcript_id"], ascending=[True, False, True])
    rows, dropped = [], {"no split": 0, "near chromosome end": 0, "several chromosomes": 0}
    half = w_prom // 2
    for gid, g in tx.groupby("gene_id", sort=False):
        first = g.iloc[0]
        if g.chrom.nunique() > 1:
            dropped["several chromosomes"] += 1
            continue
        split = chrom_split(first.chrom, splits)
        if split is None:
            dropped["no split"] += 1
            continue
        tss = int(first.tss)
        size = chrom_sizes.get(first.chrom) if chrom_sizes else None
        if tss - half < 0 or (size is not None and tss + half > size):
            dropped["near chromosome end"] += 1
            log.warning("dropping gene %s: TSS %s:%d is within %d bp of a chromosome end", gid, first.chrom, tss, half)
            continue
        rows.append({"gene_id": gid, "gene_name": first.gene_name, "chrom": first.chrom, "start": tss,
                     "end": tss + 1, "strand": first.strand, "split": split,
                     "tss_all": ";".join(str(int(t)) for t in dict.fromkeys(g.tss))})
    for why, n in dropped.items():
        if n:
            log.info("dropped %d genes (%s)", n, why)
    if not rows:
        raise AnnotationError("no gene is left after filtering")
    return pd.DataFrame(rows)


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    """A two-column ``chrom<TAB>size`` file; sizes must be positive integers."""
    path = require_file(path, "chromosome sizes file", AnnotationError)
    df = read_table(path, AnnotationError, "chrom<TAB>size file", sep="\t", header=None, usecols=[0, 1],
                    names=["chrom", "size"], comment="#")
    if df.empty or not pd.api.types.is_integer_dtype(df["size"]) or (df["size"] < 1).any():
        raise AnnotationError(f"{path}: chromosome sizes must be positive integers, one 'chrom<TAB>size' per line")
    if df.chrom.duplicated().any():
        raise AnnotationError(f"{path}: chromosome {df.chrom[df.chrom.duplicated()].iloc[0]} is listed twice")
    return dict(zip(df.chrom.astype(str), df["size"].astype(int), strict=True))


def prepare_genes(annotation: str | Path, w_prom: int = DEFAULT_CONFIG.w_prom, chrom_sizes: str | Path | None = None,
                  biotype: str | None = "protein_coding") -> pd.DataFrame:
    """Annotation file (GTF/GFF or refGene) -> gene table (see :func:`genes_from_transcripts`)."""
    name = Path(annotation).name.lower()
    is_gtf = any(name.endswith(s) for s in (".gtf", ".gtf.gz", ".gff", ".gff3", ".gff.gz", ".gff3.gz"))
    tx = read_gtf_transcripts(annotation, biotype) if is_gtf else read_refgene_transcripts(annotation)
    sizes = read_chrom_sizes(chrom_sizes) if chrom_sizes else None
    return genes_from_transcripts(tx, w_prom, sizes)
