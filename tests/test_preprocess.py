"""Annotation, labels and interactions: small tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chromoformer.data.folds import chrom_split
from chromoformer.preprocess.expression import ExpressionError, add_labels
from chromoformer.preprocess.genes import genes_from_transcripts, prepare_genes
from chromoformer.preprocess.pcres import InteractionError, gene_neighbors, read_interactions


def test_chrom_split_table():
    assert [chrom_split(c) for c in ("chr1", "7", "chr2", "chrX", "chrM")] == [1, 2, 3, 4, None]


def _gtf(tmp_path, lines):
    p = tmp_path / "a.gtf"
    p.write_text("".join(
        f"{c}\tx\ttranscript\t{s}\t{e}\t.\t{st}\t.\tgene_id \"{g}\"; transcript_id \"{t}\"; "
        f"transcript_type \"{bt}\"; gene_name \"{g}n\";\n" for g, t, c, s, e, st, bt in lines))
    return p


def test_longest_transcript_strand_aware_tss(tmp_path):
    gtf = _gtf(tmp_path, [
        ("G1", "T1", "chr1", 100001, 150000, "+", "protein_coding"),  # 0-based start 100000
        ("G1", "T2", "chr1", 90001, 200000, "+", "protein_coding"),  # longest -> TSS 90000
        ("G2", "T3", "chr7", 300001, 350000, "-", "protein_coding"),  # '-': TSS = end - 1 = 349999
        ("G3", "T4", "chr2", 500001, 510000, "+", "lncRNA"),  # filtered by biotype
        ("G4", "T5", "chrM", 100, 2000, "+", "protein_coding"),  # no CV split
        ("G5", "T6", "chr9", 5001, 9000, "+", "protein_coding"),  # TSS within 20 kb of the start
    ])
    g = prepare_genes(gtf).set_index("gene_id")
    assert list(g.index) == ["G1", "G2"]
    assert g.loc["G1", "start"] == 90000 and g.loc["G1", "tss_all"] == "90000;100000"
    assert (g.loc["G2", "start"], g.loc["G2", "strand"], g.loc["G2", "split"]) == (349999, "-", 2)


def test_gene_near_chromosome_end_dropped():
    tx = pd.DataFrame({"gene_id": ["A", "B"], "gene_name": ["A", "B"], "transcript_id": ["a", "b"],
                       "chrom": ["chr1", "chr1"], "start": [50000, 985000], "end": [60000, 990000],
                       "strand": ["+", "+"]})
    g = genes_from_transcripts(tx, chrom_sizes={"chr1": 1_000_000})
    assert list(g.gene_id) == ["A"]


def test_labels_median_rule_and_version_matching(tmp_path):
    genes = pd.DataFrame({"gene_id": ["ENSG1.2", "ENSG2.1", "ENSG3.1", "ENSG9.1"]})
    expr = tmp_path / "e.tsv"
    expr.write_text("gene\tE003\tE004\nENSG1.7\t0.0\t1\nENSG2\t5.0\t1\nENSG3.3\t10.0\t1\n")
    out = add_labels(genes, expr, "E003")
    assert list(out.gene_id) == ["ENSG1.2", "ENSG2.1", "ENSG3.1"]
    assert out.label.tolist() == [0, 1, 1]  # median 5.0 and >= is expressed
    with pytest.raises(ExpressionError, match=r"no sample column \(or row\) 'E999'"):
        add_labels(genes, expr, "E999")


def _inter(tmp_path, rows, header="bait_chrom\tbait_start\tbait_end\toe_chrom\toe_start\toe_end\tscore\n"):
    p = tmp_path / "i.tsv"
    p.write_text(header + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return p


def test_neighbors_threshold_length_topk_dedupe(tmp_path):
    genes = pd.DataFrame({"gene_id": ["G"], "chrom": ["chr1"], "tss_all": ["100500;200500"]})
    rows = [("chr1", 100000, 101000, "chr1", 150000 + i * 1000, 150500 + i * 1000, 2 + i) for i in range(10)]
    rows += [
        ("chr1", 100000, 101000, "chr1", 300000, 300500, 1.5),  # not > 1.5
        ("chr1", 100000, 101000, "chr1", 400000, 440001, 50.0),  # longer than w_max
        ("chr1", 100000, 101000, "chr2", 1000, 2000, 50.0),  # trans
        ("chr1", 200000, 201000, "chr1", 159000, 159500, 30.0),  # same other end via 2nd TSS: keep max
        ("chr1", 200000, 201000, "chr1", 200000, 201000, 99.0),  # the bait itself
    ]
    out = gene_neighbors(genes, read_interactions(_inter(tmp_path, rows)), i_max=8)
    nb, sc = out.neighbors[0].split(";"), [float(s) for s in out.scores[0].split(";")]
    assert nb[0] == "chr1:159000-159500" and sc[0] == 30.0
    assert len(nb) == 8 and sc == sorted(sc, reverse=True) and min(sc) > 1.5
    assert nb[1:] == [f"chr1:{150000 + i * 1000}-{150500 + i * 1000}" for i in (8, 7, 6, 5, 4, 3, 2)]


def test_chicago_ibed_and_empty_table(tmp_path):
    ibed = _inter(tmp_path, [("chr1", 0, 2000, "b", "chr1", 50000, 51000, "o", 10, 3.2)],
                  "bait_chr\tbait_start\tbait_end\tbait_name\totherEnd_chr\totherEnd_start\totherEnd_end\t"
                  "otherEnd_name\tN_reads\tscore\n")
    df = read_interactions(ibed)
    assert df.iloc[0].tolist() == ["chr1", 0, 2000, "chr1", 50000, 51000, 3.2]
    with pytest.raises(InteractionError, match="empty"):
        read_interactions(_inter(tmp_path, []))
    genes = pd.DataFrame({"gene_id": ["G"], "chrom": ["chr3"], "tss_all": ["500"]})
    assert gene_neighbors(genes, df).neighbors[0] == ""  # no pCRE is a valid answer


def test_signals_store_from_simulated_bams_feeds_the_dataset(tmp_path):
    pytest.importorskip("pysam")
    from chromoformer import ChromoformerConfig
    from chromoformer.data import ChromoformerDataset, read_metadata
    from chromoformer.files.atomic import write_table
    from chromoformer.preprocess.expression import add_labels as al
    from chromoformer.preprocess.expression import assemble_metadata
    from chromoformer.preprocess.pcres import read_interactions as ri
    from chromoformer.preprocess.signals import build_signal_store, gene_regions
    from chromoformer.preprocess.simulate import CHROMHMM, SimConfig, simulate

    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed")
    p = simulate(tmp_path / "sim", SimConfig(span_mb=8))
    genes = al(prepare_genes(p["gtf"], chrom_sizes=p["sizes"]), p["expression"], "SIM")
    meta = assemble_metadata(gene_neighbors(genes, ri(p["pchic"])), "SIM")
    write_table(meta, tmp_path / "meta.csv")
    g = read_metadata(tmp_path / "meta.csv")
    marks = ["H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac"]
    store = build_signal_store(gene_regions(g, 40000), [p[f"bam_{m}"] for m in marks], tmp_path / "store", marks=marks)
    item = ChromoformerDataset(g, store, ChromoformerConfig())[0]
    assert item["promoter_feats"][100].shape == (400, 7) and item["promoter_feats"][100].sum() > 0
    assert store.manifest["marks"] == marks and store.manifest["normalisation"] == "raw read depth"
    assert np.isfinite(item["pcre_feats"][2000].numpy()).all()


def test_hic_cool_observed_over_expected(tmp_path):
    cooler = pytest.importorskip("cooler")
    res, n = 10_000, 20
    bins = pd.DataFrame({"chrom": "chr1", "start": np.arange(n) * res, "end": (np.arange(n) + 1) * res})
    pix = {}
    for i in range(n):
        for j in range(i, n):
            pix[(i, j)] = 100 // (1 + j - i)  # distance decay
    pix[(5, 9)] = 100  # one strong loop from the TSS bin 5 to bin 9 (expected at d=4 is ~20)
    pixels = pd.DataFrame([(i, j, c) for (i, j), c in pix.items() if c > 0], columns=["bin1_id", "bin2_id", "count"])
    path = str(tmp_path / "m.cool")
    cooler.create_cooler(path, bins, pixels)
    from chromoformer.preprocess.hic_scores import interactions_from_cool

    genes = pd.DataFrame({"gene_id": ["G"], "chrom": ["chr1"], "tss_all": ["55000"]})
    inter = interactions_from_cool(path, genes, weight=None)
    assert set(inter.bait_start) == {50000}
    best = gene_neighbors(genes.assign(), inter, min_score=1.5, i_max=1)
    assert best.neighbors[0] == "chr1:90000-100000"
    loop = inter[inter.oe_start == 90000].score.iloc[0]
    assert loop > 3  # 100 vs a mean of ~24 at distance 4
