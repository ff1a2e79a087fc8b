"""Gene annotation -> one TSS per gene, and chromosome-wise CV splits (docs/original.md §5.2).

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

import numpy as np
import pandas as pd

from chromoformer.config import DEFAULT_CONFIG
from chromoformer.data.folds import SPLITS, chrom_split
from chromoformer.data.genome import read_chrom_sizes
from chromoformer.errors import AnnotationError
from chromoformer.files.checked import numeric_column, read_table, require_file
from chromoformer.preprocess.annotation import read_annotation
from chromoformer.preprocess.assembly import from_annotation, from_sizes

log = logging.getLogger(__name__)

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
    bare = tx.chrom.astype(str).str.removeprefix("chr")
    by = tx.assign(x=bare.eq("X"), y=bare.eq("Y"), bare=bare).groupby("gene_id")
    on = by.agg(x=("x", "any"), y=("y", "any"), n=("bare", "nunique"))
    par = on.index[on.x & on.y & (on.n == 2)]  # on chrX and chrY and nothing else
    if len(par):
        log.info("%d pseudoautosomal genes on chrX and chrY: their chrX transcripts are used", len(par))
        tx = tx[~(tx.gene_id.isin(par) & tx.chrom.str.removeprefix("chr").eq("Y"))]
    return tx, dropped


def _joined(tx: pd.DataFrame) -> pd.Series:
    """Per gene (rows grouped by gene, in order), its TSSs joined by ';'."""
    if tx.empty:
        return pd.Series([], dtype=object)
    gid, tss = tx.gene_id.to_numpy(), tx.tss.astype(int).astype(str).to_numpy()
    breaks = np.flatnonzero(gid[1:] != gid[:-1]) + 1
    return pd.Series([";".join(t) for t in np.split(tss, breaks)], index=gid[np.r_[0, breaks]])


def genes_from_transcripts(
    tx: pd.DataFrame, *, w_prom: int = DEFAULT_CONFIG.w_prom, chrom_sizes: dict[str, int] | None = None,
    splits: dict[int, tuple[str, ...]] = SPLITS, dropped: list[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per gene: gene_id, gene_name, chrom, start (TSS), end, strand, split, tss_all.

    Non-primary contigs go first (:func:`primary_transcripts`); then genes on several
    chromosomes or on both strands, on chromosomes outside the splits, and genes whose promoter window
    (TSS +- w_prom/2) leaves the chromosome are dropped. Every dropped gene is appended to
    ``dropped`` as (gene_id, reason) and the counts per reason are logged.
    """
    contigs = sorted(set(tx.chrom.astype(str)))
    tx, lost = primary_transcripts(tx)
    tx = tx.assign(span=tx.end - tx.start, tss=tx.start.where(tx.strand == "+", tx.end - 1))
    tx = tx.sort_values(["gene_id", "span", "transcript_id"], ascending=[True, False, True])
    half = w_prom // 2
    by = tx.groupby("gene_id", sort=False)
    first = by.head(1).set_index("gene_id")  # the longest transcript of each gene, in gene order
    n_chroms, n_strands = by.chrom.nunique(), by.strand.nunique()
    multi = tx[tx.gene_id.isin(n_chroms.index[n_chroms > 1])]
    chroms = multi.groupby("gene_id").chrom.agg(lambda c: ", ".join(sorted(set(c)))).reindex(first.index)
    tss_all = _joined(tx.drop_duplicates(["gene_id", "tss"]))
    split = first.chrom.map(lambda c: chrom_split(c, splits))
    size = first.chrom.map(chrom_sizes).astype("float64") if chrom_sizes is not None else None
    tss = first.tss.astype(int)
    why = pd.Series(None, index=first.index, dtype=object)  # the first rule a gene fails, in this order
    for bad, reason in [
        (n_chroms > 1, "on several chromosomes (" + chroms + ")"),
        (n_strands > 1, "on both strands (" + first.chrom + ")"),
        (split.isna(), first.chrom + " is in no cross-validation split"),
        (size.isna() if size is not None else None, first.chrom + " is not in the chromosome sizes"),
        ((tss - half < 0) | ((tss + half > size) if size is not None else False),
         f"TSS within {half} bp of a chromosome end"),
    ]:
        if bad is not None:
            why = why.where(why.notna() | ~bad.astype(bool), reason)
    lost += [(g, w) for g, w in why.dropna().items()]
    keep = why.isna()
    k = first[keep]
    rows = pd.DataFrame({"gene_id": k.index, "gene_name": k.gene_name.to_numpy(), "chrom": k.chrom.to_numpy(),
                         "start": tss[keep].to_numpy(), "end": tss[keep].to_numpy() + 1,
                         "strand": k.strand.to_numpy(), "split": split[keep].astype(int).to_numpy(),
                         "tss_all": tss_all.loc[k.index].to_numpy()})
    counts = pd.Series([why.split(" (")[0] for _, why in lost], dtype=str).value_counts()
    for why, n in counts.items():
        log.info("dropped %d genes: %s", n, why)
    if dropped is not None:
        dropped.extend(lost)
    if rows.empty:
        hint = ""
        if lost and all(w.startswith("only on non-primary") for _, w in lost):
            if any(re.match(r"^(chr)?(\d+|X|Y)_", c) or "_alt" in c or "_hap" in c for c in contigs):
                hint = (f"; every transcript lies on an alt/hap/fix/random/unplaced contig ({', '.join(contigs[:3])}"
                        f"{'...' if len(contigs) > 3 else ''}): is this the primary-assembly annotation?")
            else:
                hint = ("; no sequence is named like a chromosome (chr1/1 ... chrX): an NCBI file with accessions "
                        "(NC_000001.11) needs its 'region' lines, or use a UCSC/GENCODE/Ensembl annotation")
        raise AnnotationError(f"no gene is left after filtering ({len(lost)} dropped: "
                              f"{'; '.join(f'{n} {w}' for w, n in counts.items())}){hint}")
    log.info("kept %d genes", len(rows))
    return rows


GENE_TABLE = ("gene_id", "chrom", "start", "end", "strand", "split", "tss_all")


def read_gene_table(path: str | Path) -> pd.DataFrame:
    """A ``genes.tsv`` written by :func:`prepare_genes` (``preprocess genes``), checked: the columns
    of :data:`GENE_TABLE` (``gene_name`` and ``length`` optional), integer coordinates with
    start < end, strands '+'/'-', integer splits, ';'-joined integer TSSs, unique gene ids."""
    path = require_file(path, "gene table", AnnotationError)
    g = read_table(path, AnnotationError, "gene table (genes.tsv from 'chromoformer preprocess genes')", sep="\t",
                   dtype={"gene_id": str, "gene_name": str, "chrom": str, "tss_all": str, "strand": str})
    missing = [c for c in GENE_TABLE if c not in g.columns]
    if missing:
        raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)}; a gene table from 'chromoformer "
                              f"preprocess genes' has {', '.join(GENE_TABLE)}")
    if g.empty:
        raise AnnotationError(f"{path}: the gene table has no genes")

    def bad(mask: pd.Series, what: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask.to_numpy())[0])
            raise AnnotationError(f"{path}:{i + 2}: gene {g.gene_id.iloc[i]}: {what}")

    for c in ("start", "end", "split"):
        g[c] = numeric_column(g, c, path, AnnotationError, integer=True)
    bad(g.gene_id.isna(), "empty gene_id")
    bad((g.start < 0) | (g.end <= g.start), "start < 0 or end <= start")
    bad(g.split < 1, "split must be >= 1")
    bad(~g.strand.isin(["+", "-"]), "strand must be '+' or '-'")
    bad(~g.tss_all.fillna("").str.fullmatch(r"\d+(;\d+)*"), "tss_all must be ';'-joined integer positions")
    bad(g.gene_id.duplicated(), "appears twice")
    return g


def prepare_genes(annotation: str | Path, *, w_prom: int = DEFAULT_CONFIG.w_prom, chrom_sizes: str | Path | None = None,
                  biotype: str | None = "protein_coding", dropped: list[tuple[str, str]] | None = None,
                  ) -> pd.DataFrame:
    """Annotation file (any format of :mod:`~chromoformer.preprocess.annotation`) -> gene table
    (see :func:`genes_from_transcripts`; ``dropped`` receives (gene_id, reason) of the genes left out)."""
    if w_prom < 2 or w_prom % 2:
        raise AnnotationError(f"--w-prom must be a positive even number of bp (the window is TSS +- w_prom/2), "
                              f"got {w_prom}")
    if biotype is not None and not biotype.strip():
        raise AnnotationError("--biotype is empty; give one (protein_coding, lncRNA...) or 'any'")
    tx, lengths = read_annotation(annotation, biotype)  # one pass: transcripts and exon-union lengths
    sizes = read_chrom_sizes(chrom_sizes) if chrom_sizes else None
    named, by_sizes = from_annotation(annotation), from_sizes(sizes) if sizes else None
    if named and by_sizes and named != by_sizes:
        raise AnnotationError(f"{annotation}: its header says {named} but {chrom_sizes} has {by_sizes} chromosome "
                              "sizes; use files of one assembly")
    if named or by_sizes:
        log.info("%s: assembly %s", annotation, named or by_sizes)
    try:
        genes = genes_from_transcripts(tx, w_prom=w_prom, chrom_sizes=sizes, dropped=dropped)
    except AnnotationError as e:
        raise AnnotationError(f"{annotation}: {e}") from None
    # length: for counts -> RPKM/TPM, of the copy on the chromosome kept (missing where the format has no exons)
    length = [lengths.get((g, c)) for g, c in zip(genes.gene_id, genes.chrom, strict=True)]
    return genes.assign(length=pd.array(length, dtype="Int64"))
