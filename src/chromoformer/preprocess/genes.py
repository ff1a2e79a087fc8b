"""Gene annotation -> one TSS per gene, and chromosome-wise CV splits (SPEC §5.2).

TSS rule (the original's ``ensg2tss``): per gene, transcripts are ordered longest genomic
span first (ties by transcript id); the gene's TSS is the first one's 5' end, 0-based:
``start`` for '+' genes and ``end - 1`` for '-' genes. All transcript TSSs are kept in
``tss_all`` because neighbours are collected over every TSS of a gene.

Inputs: every annotation :mod:`chromoformer.preprocess.annotation` reads.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from chromoformer.config import DEFAULT_CONFIG
from chromoformer.errors import AnnotationError
from chromoformer.io import read_table, require_file
from chromoformer.preprocess.annotation import read_annotation
from chromoformer.preprocess.assembly import from_annotation, from_sizes

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


PRIMARY = re.compile(r"^(chr)?(\d+|X|Y|M|MT)$")  # alt, hap, fix, random, Un, EBV... are not


def is_primary(chrom: str) -> bool:
    """Whether ``chrom`` is a primary-assembly chromosome (``chr1``/``1`` ... ``chrX``, ``chrY``, ``chrM``)."""
    return bool(PRIMARY.match(chrom))


def primary_transcripts(tx: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Transcripts on primary chromosomes, and (gene, reason) of genes left without any.

    Done before a gene's copies are compared, so a gene with a copy on an alt/hap/fix
    contig (the MHC genes on ``chr6_*_hap*``) keeps its primary copy. GENCODE's chrY copies
    of pseudoautosomal genes (``..._PAR_Y``) are dropped for their chrX copy; a gene id
    on both chrX and chrY (UCSC PAR genes) keeps its chrX transcripts.
    """
    primary = tx.chrom.astype(str).map(is_primary)
    dropped = [(g, "only on non-primary contigs (alt/hap/fix/random/unplaced)")
               for g in sorted(set(tx.gene_id[~primary]) - set(tx.gene_id[primary]))]
    tx = tx[primary]
    par_y = tx.gene_id.astype(str).str.endswith("_PAR_Y")
    dropped += [(g, "PAR copy on chrY (its chrX copy is kept)") for g in sorted(set(tx.gene_id[par_y]))]
    tx = tx[~par_y]
    chroms = tx.groupby("gene_id").chrom.agg(lambda c: frozenset(x.removeprefix("chr") for x in c))
    par = chroms[chroms.map(lambda s: s == frozenset({"X", "Y"}))].index  # (== on the Series would broadcast)
    if len(par):
        log.info("%d pseudoautosomal genes on chrX and chrY: their chrX transcripts are used", len(par))
        tx = tx[~(tx.gene_id.isin(par) & tx.chrom.str.removeprefix("chr").eq("Y"))]
    return tx, dropped


def genes_from_transcripts(
    tx: pd.DataFrame, w_prom: int = DEFAULT_CONFIG.w_prom, chrom_sizes: dict[str, int] | None = None,
    splits: dict[int, tuple[str, ...]] = SPLITS, dropped: list[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per gene: gene_id, gene_name, chrom, start (TSS), end, strand, split, tss_all.

    Non-primary contigs go first (:func:`primary_transcripts`); then genes on several
    chromosomes, on chromosomes outside the splits, and genes whose promoter window
    (TSS +- w_prom/2) leaves the chromosome are dropped. Every dropped gene is appended to
    ``dropped`` as (gene_id, reason) and the counts per reason are logged.
    """
    tx, lost = primary_transcripts(tx)
    tx = tx.assign(span=tx.end - tx.start, tss=tx.start.where(tx.strand == "+", tx.end - 1))
    tx = tx.sort_values(["gene_id", "span", "transcript_id"], ascending=[True, False, True])
    rows = []
    half = w_prom // 2
    for gid, g in tx.groupby("gene_id", sort=False):
        first = g.iloc[0]
        if g.chrom.nunique() > 1:
            lost.append((gid, f"on several chromosomes ({', '.join(sorted(set(g.chrom)))})"))
            continue
        split = chrom_split(first.chrom, splits)
        if split is None:
            lost.append((gid, f"{first.chrom} is in no cross-validation split"))
            continue
        tss = int(first.tss)
        size = chrom_sizes.get(first.chrom) if chrom_sizes else None
        if chrom_sizes is not None and size is None:
            lost.append((gid, f"{first.chrom} is not in the chromosome sizes"))
            continue
        if tss - half < 0 or (size is not None and tss + half > size):
            lost.append((gid, f"TSS within {half} bp of a chromosome end"))
            continue
        rows.append({"gene_id": gid, "gene_name": first.gene_name, "chrom": first.chrom, "start": tss,
                     "end": tss + 1, "strand": first.strand, "split": split,
                     "tss_all": ";".join(str(int(t)) for t in dict.fromkeys(g.tss))})
    counts = pd.Series([why.split(" (")[0] for _, why in lost], dtype=str).value_counts()
    for why, n in counts.items():
        log.info("dropped %d genes: %s", n, why)
    if dropped is not None:
        dropped.extend(lost)
    if not rows:
        hint = ""
        if lost and all(w.startswith("only on non-primary") for _, w in lost):
            hint = ("; no sequence is named like a chromosome (chr1/1 ... chrX): an NCBI file with accessions "
                    "(NC_000001.11) needs its 'region' lines, or use a UCSC/GENCODE/Ensembl annotation")
        raise AnnotationError(f"no gene is left after filtering ({len(lost)} dropped: "
                              f"{'; '.join(f'{n} {w}' for w, n in counts.items())}){hint}")
    log.info("kept %d genes", len(rows))
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
                  biotype: str | None = "protein_coding", dropped: list[tuple[str, str]] | None = None,
                  ) -> pd.DataFrame:
    """Annotation file (any format of :mod:`~chromoformer.preprocess.annotation`) -> gene table
    (see :func:`genes_from_transcripts`; ``dropped`` receives (gene_id, reason) of the genes left out)."""
    tx, lengths = read_annotation(annotation, biotype)  # one pass: transcripts and exon-union lengths
    sizes = read_chrom_sizes(chrom_sizes) if chrom_sizes else None
    named, by_sizes = from_annotation(annotation), from_sizes(sizes) if sizes else None
    if named and by_sizes and named != by_sizes:
        raise AnnotationError(f"{annotation}: its header says {named} but {chrom_sizes} has {by_sizes} chromosome "
                              "sizes; use files of one assembly")
    if named or by_sizes:
        log.info("%s: assembly %s", annotation, named or by_sizes)
    genes = genes_from_transcripts(tx, w_prom, sizes, dropped=dropped)
    # length: for counts -> RPKM/TPM, of the copy on the chromosome kept (missing where the format has no exons)
    length = [lengths.get((g, c)) for g, c in zip(genes.gene_id, genes.chrom, strict=True)]
    return genes.assign(length=pd.array(length, dtype="Int64"))
