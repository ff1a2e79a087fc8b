"""Annotation -> gene table (``genes_from_transcripts``): the vectorised rules vs the per-gene loop
they replaced, on the same transcripts in the same run, outputs checked equal.

Inputs: a synthetic GENCODE-sized transcript table (``--genes`` genes, 1-6 transcripts each,
some on alt contigs, chrX/chrY PAR pairs, two-chromosome and two-strand genes) and, where
``.ci/run`` has unpacked it, Rsubread's real NCBI RefSeq hg19 table (25,702 genes).

    python bench/gene_table.py --genes 60000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.folds import chrom_split
from chromoformer.preprocess.annotation import read_transcripts
from chromoformer.preprocess.genes import genes_from_transcripts, primary_transcripts

REFSEQ = Path(__file__).resolve().parents[1] / ".cache" / "rsubread-annot" / "hg19_RefSeq_exon.txt"


def per_gene_loop(tx: pd.DataFrame, w_prom: int, chrom_sizes: dict[str, int] | None) -> tuple[pd.DataFrame, list]:
    """The baseline: the same rules one gene at a time (the implementation before 2026-12-01)."""
    tx, lost = primary_transcripts(tx)
    tx = tx.assign(span=tx.end - tx.start, tss=tx.start.where(tx.strand == "+", tx.end - 1))
    tx = tx.sort_values(["gene_id", "span", "transcript_id"], ascending=[True, False, True])
    rows, half = [], w_prom // 2
    for gid, g in tx.groupby("gene_id", sort=False):
        first = g.iloc[0]
        if g.chrom.nunique() > 1:
            lost.append((gid, f"on several chromosomes ({', '.join(sorted(set(g.chrom)))})"))
            continue
        if g.strand.nunique() > 1:
            lost.append((gid, f"on both strands ({first.chrom})"))
            continue
        split = chrom_split(first.chrom)
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
    return pd.DataFrame(rows), lost


def synthetic(n_genes: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, int]]:
    rng = np.random.default_rng(seed)
    chroms = [f"chr{c}" for c in [*range(1, 23), "X", "Y", "M"]]
    sizes = {c: int(rng.integers(50, 250)) * 10**6 for c in chroms}
    k = rng.integers(1, 7, n_genes)
    gene = np.repeat(np.arange(n_genes), k)
    chrom = np.array(chroms)[rng.integers(0, len(chroms), n_genes)][gene].astype(object)
    strand = np.where(rng.random(n_genes) < 0.5, "+", "-")[gene].astype(object)
    alt = rng.random(len(gene)) < 0.02  # a copy on an alt haplotype
    chrom[alt] = "chr6_apd_hap1"
    two = np.isin(gene, np.arange(0, n_genes, 997))  # every 997th gene: one transcript on chr2 too
    chrom[two & (np.r_[True, gene[1:] != gene[:-1]])] = "chr2"
    start = rng.integers(0, 10**8, n_genes)[gene] + rng.integers(0, 5000, len(gene))
    end = start + rng.integers(200, 200_000, len(gene))
    ids = np.array([f"ENSG{i:011d}" for i in range(n_genes)], dtype=object)[gene]
    tx = pd.DataFrame({"gene_id": ids, "gene_name": ids, "transcript_id": [f"T{i}" for i in range(len(gene))],
                       "chrom": chrom, "start": start, "end": end, "strand": strand})
    par = tx[tx.chrom == "chrX"].head(200).assign(chrom="chrY")  # PAR copies
    return pd.concat([tx, par], ignore_index=True), sizes


def timed(f, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genes", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    cases = [(f"synthetic, {a.genes:,} genes", *synthetic(a.genes))]
    if REFSEQ.is_file():
        cases.append(("NCBI RefSeq hg19 (SAF)", read_transcripts(REFSEQ, None), None))
    print("| input | transcripts | genes kept | per-gene loop s | vectorised s | speed-up | same output |\n"
          "|---|---:|---:|---:|---:|---:|---|")
    for name, tx, sizes in cases:
        t_old, (want, lost_old) = timed(lambda tx=tx, sizes=sizes: per_gene_loop(tx, 40_000, sizes), a.repeats)

        def new(tx=tx, sizes=sizes):
            lost: list = []
            return genes_from_transcripts(tx, w_prom=40_000, chrom_sizes=sizes, dropped=lost), lost

        t_new, (got, lost_new) = timed(new, a.repeats)
        same = got.astype(str).equals(want.astype(str)) and lost_new == lost_old
        print(f"| {name} | {len(tx):,} | {len(got):,} | {t_old:.2f} | {t_new:.2f} | {t_old / t_new:.1f}x | {same} |")


if __name__ == "__main__":
    main()
