"""Genome-browser export: exact intervals, bigWig/bedGraph/bedpe/interact read back, and attribution
bins placed back on the genome where the model's inputs came from."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer.cli import main
from chromoformer.config import ChromoformerConfig
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.data.metadata import Gene, Region
from chromoformer.errors import UsageError
from chromoformer.results import browser

pyBigWig = pytest.importorskip("pyBigWig")


def _gene(gid, chrom, tss, strand="+", pcres=(), scores=()):
    return Gene(gene_id=gid, chrom=chrom, tss=tss, strand=strand, pcres=tuple(pcres), scores=tuple(scores))


def test_prediction_intervals_never_overlap():
    genes = [_gene("a", "chr1", 1000), _gene("b", "chr1", 1400), _gene("c", "chr1", 5000), _gene("d", "chr1", 5000),
             _gene("e", "chr2", 300)]
    v = pd.Series({"a": 0.1, "b": 0.2, "c": 0.4, "d": 0.8, "e": 0.5})
    iv = browser.prediction_intervals(genes, v, width=1000)
    assert iv.values.tolist() == [["chr1", 500, 1200, 0.1], ["chr1", 1200, 1900, 0.2],
                                  ["chr1", 4500, 5500, pytest.approx(0.6)], ["chr2", 0, 800, 0.5]]
    with pytest.raises(UsageError, match="have no prediction"):
        browser.prediction_intervals(genes, v.drop("b"))


def test_summed_splits_overlaps_and_keeps_gaps():
    df = pd.DataFrame({"chrom": ["c", "c", "c"], "start": [0, 5, 20], "end": [10, 15, 30], "value": [1.0, 2.0, 4.0]})
    assert browser.summed(df).values.tolist() == [["c", 0, 5, 1.0], ["c", 5, 10, 3.0], ["c", 10, 15, 2.0],
                                                  ["c", 20, 30, 4.0]]


def test_bigwig_round_trip_and_size_checks(tmp_path):
    sizes = {"chr2": 10_000, "chr1": 20_000}
    df = pd.DataFrame({"chrom": ["chr1", "chr2", "chr1"], "start": [100, 0, 0], "end": [200, 50, 100],
                       "value": [2.5, -1.0, 0.5]})
    p = browser.write_bigwig(df, tmp_path / "x.bw", sizes)
    bw = pyBigWig.open(str(p))
    assert bw.chroms() == sizes
    assert bw.intervals("chr1") == ((0, 100, 0.5), (100, 200, 2.5)) and bw.intervals("chr2") == ((0, 50, -1.0),)
    with pytest.raises(UsageError, match="runs past the end of chr2"):
        browser.write_bigwig(df.assign(end=[200, 10_001, 100]), tmp_path / "y.bw", sizes)
    with pytest.raises(UsageError, match="chromosome chr3 is not in the chromosome sizes"):
        browser.write_bigwig(df.assign(chrom=["chr3"] * 3), tmp_path / "y.bw", sizes)
    assert not (tmp_path / "y.bw").exists() and not list(tmp_path.glob(".y.bw*"))


@pytest.mark.parametrize("b", [100, 500])
def test_attribution_bins_land_where_the_inputs_came_from(synthetic, b):
    """Feed the model's own input features through the placement: each placed bin must hold
    ln(mean signal + 1) of exactly that genomic interval (both strands, promoters and pCREs)."""
    meta, npy = synthetic
    cfg = ChromoformerConfig()
    src = NpyDirSource(npy)
    genes = read_metadata(meta)[:10]
    assert {g.strand for g in genes} == {"+", "-"} and any(g.pcres for g in genes)
    ds = ChromoformerDataset(genes, src, cfg, (2000, 500, 100))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(genes))))
    prom, pcre = batch["promoter_feats"][b].numpy(), batch["pcre_feats"][b].numpy()
    checked = 0
    for k, g in enumerate(genes):
        own = [(Region(g.chrom, g.tss - 20000, g.tss + 20000), dataclasses.replace(g, pcres=()), prom[k:k + 1],
                pcre[k:k + 1])]  # every synthetic region file has its own signal: check each against its own
        own += [(r, dataclasses.replace(g, pcres=(r,)), prom[k:k + 1], pcre[k:k + 1, j:j + 1])
                for j, r in enumerate(g.pcres)]
        for n, (r, gg, pp, cc) in enumerate(own):
            depth = np.load(src.path(r)).astype(np.float64)  # (7, L) per-base depth
            tracks = browser.attribution_intervals([gg], pp, cc, b, cfg.w_prom)
            for m, iv in enumerate(tracks):
                iv = iv.iloc[: (cfg.w_prom // b)] if n == 0 else iv.iloc[cfg.w_prom // b:]  # this region's bins
                assert len(iv) == (cfg.w_prom // b if n == 0 else -(-len(r) // b))
                for row in iv.itertuples():
                    d = depth[m, row.start - r.start : row.end - r.start]
                    assert row.value == pytest.approx(np.log(d.mean() + 1), rel=1e-5, abs=1e-6)
                    checked += 1
    assert checked > 7 * 10 * cfg.w_prom // b


def test_links_bedpe_and_interact(tmp_path):
    g1 = _gene("G1", "chr1", 50_000, "-", [Region("chr1", 10_000, 12_000), Region("chr1", 80_000, 81_000)], [2.0, 4.0])
    g2 = _gene("G2", "chr1", 20_000, "+", [Region("chr1", 10_000, 12_000)], [1.0])
    links = browser.link_table([g1, g2])
    bedpe, inter = browser.write_links(links, tmp_path, "interaction")
    rows = [line.split("\t") for line in bedpe.read_text().splitlines() if not line.startswith("#")]
    assert [r[:8] for r in rows] == [["chr1", "10000", "12000", "chr1", "20000", "20001", "G2:pcre0", "1"],
                                     ["chr1", "10000", "12000", "chr1", "50000", "50001", "G1:pcre0", "2"],
                                     ["chr1", "80000", "81000", "chr1", "50000", "50001", "G1:pcre1", "4"]]
    lines = inter.read_text().splitlines()
    assert lines[0].startswith("track type=interact") and len(lines) == 4
    cols = [line.split("\t") for line in lines[1:]]
    assert all(len(c) == 18 for c in cols)
    assert [(c[0], int(c[1]), int(c[2]), int(c[4])) for c in cols] == [("chr1", 10000, 20001, 250),
                                                                        ("chr1", 10000, 50001, 500),
                                                                        ("chr1", 50000, 81000, 1000)]
    assert cols[2][8:13] == ["chr1", "80000", "81000", "pcre1", "."] and cols[2][13:] == ["chr1", "50000", "50001",
                                                                                         "G1", "-"]
    per = pd.DataFrame({"gene_id": ["G1", "G1", "G2", "G1"], "perturbation": ["drop_pcre", "drop_pcre", "drop_pcre",
                                                                              "zero_mark_promoter"],
                        "target": ["pcre0", "pcre1", "pcre0", "H3K4me3"], "delta": [-0.5, 0.25, -1.0, 9.0]})
    drop = browser.link_table([g1, g2], "drop", perturbation=per).set_index("name").value
    assert drop.to_dict() == {"G1:pcre0": -0.5, "G1:pcre1": 0.25, "G2:pcre0": -1.0}
    att = pd.DataFrame({"gene_id": ["G1"] * 4, "pcre": [0, 0, 1, 1], "weight": [0.2, 0.4, 0.1, 0.3]})
    a = browser.link_table([g1], "attention", attention=att).set_index("name").value
    assert a.to_dict() == pytest.approx({"G1:pcre0": 0.3, "G1:pcre1": 0.2})
    with pytest.raises(UsageError, match="needs the interpretation's perturbation.tsv"):
        browser.link_table([g1], "drop")


def test_export_cli_on_the_demo(demo, tmp_path):
    meta, ck = demo / "demo_meta.csv", demo / "scrambled-clf-fold1.pt"
    m = pd.read_csv(meta)
    sizes = tmp_path / "sizes"
    sizes.write_text("".join(f"{c}\t{int(m.end[m.chrom == c].max()) + 1_000_000}\n" for c in m.chrom.unique()))
    main(["predict", "-m", str(meta), "-d", str(demo / "demo_data"), "-k", str(ck), "-k", str(ck),
          "-o", str(tmp_path / "pred.csv")])
    genes = m.gene_id.astype(str).tolist()[:3]
    main(["interpret", "-m", str(meta), "-d", str(demo / "demo_data"), "-k", str(ck), "-o", str(tmp_path / "interp"),
          "--genes", *genes])
    main(["export", "-m", str(meta), "-o", str(tmp_path / "tracks"), "--predictions", str(tmp_path / "pred.csv"),
          "--interpretation", str(tmp_path / "interp"), "--chrom-sizes", str(sizes), "--link-score", "drop"])
    t = tmp_path / "tracks"
    pred = pd.read_csv(tmp_path / "pred.csv").set_index("gene_id")
    bw = pyBigWig.open(str(t / "prediction.bw"))
    for g in read_metadata(meta)[:20]:
        assert bw.values(g.chrom, g.tss, g.tss + 1)[0] == pytest.approx(pred.prediction[g.gene_id], rel=1e-6)
    assert pyBigWig.open(str(t / "prediction_sd.bw")).stats(m.chrom[0])[0] == 0.0  # one checkpoint twice
    attr = [pyBigWig.open(str(p)) for p in sorted(t.glob("attribution.*.bw"))]
    assert len(attr) == 7 and all(sum(e - s for s, e, _ in a.intervals(m.chrom[0]) or ()) > 0 for a in attr[:1])
    links = pd.read_csv(t / "pcre_links.bedpe", sep="\t", comment="#", header=None)
    assert set(links[6].str.split(":").str[0]) <= set(genes) and len(links) > 0
    graph = (t / "predictions.bedGraph").read_text().splitlines()
    assert graph[0].startswith("track type=bedGraph") and len(graph) == 1 + m.groupby(["chrom", "start"]).ngroups
    if browser.have_pybigtools():  # the indexed versions: one record per gene, and the links
        import pybigtools

        def count(name):
            f = pybigtools.open(str(t / name))
            return sum(len(list(f.records(c))) for c in f.chroms())

        assert count("predictions.bb") == len(m) and count("pcre_links.bb") == len(links)


def test_genes_without_pcres_interpret_report_and_export(synthetic, tmp_path):
    """Interpreting only genes with no pCRE writes an attention.tsv with its header and no rows, which
    report and export read back (no links, no error)."""
    from chromoformer.results.report import report

    meta, npy = synthetic
    genes = [g.gene_id for g in read_metadata(meta) if not g.pcres][:2]
    assert len(genes) == 2
    run = tmp_path / "run"
    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(run), "--epochs", "1",
          "--num-workers", "0"])
    main(["interpret", "-m", str(meta), "-d", str(npy), "-k", str(run / "best.pt"), "-o", str(tmp_path / "i"),
          "--ig-steps", "0", "--genes", *genes])
    att = pd.read_csv(tmp_path / "i" / "attention.tsv", sep="\t")
    assert list(att.columns) == ["gene_id", "binsize", "layer", "head", "pcre", "weight"] and att.empty
    assert (report(run, tmp_path / "i").parent / "genes" / f"{genes[0]}.html").is_file()
    main(["export", "-m", str(meta), "-o", str(tmp_path / "t"), "--interpretation", str(tmp_path / "i"),
          "--link-score", "attention"])
    assert (tmp_path / "t" / "pcre_links.bedpe").read_text().splitlines() == ["# bedpe: pCRE -> TSS, score = attention"]


def test_biginteract_and_prediction_bigbed_read_back(tmp_path):
    pybigtools = pytest.importorskip("pybigtools", reason="pip install -e '.[dev]' (pybigtools)")
    from chromoformer.results import bigbed

    g1 = _gene("G1", "chr1", 50_000, "-", [Region("chr1", 10_000, 12_000), Region("chr1", 80_000, 81_000)], [2.0, 4.0])
    g2 = _gene("G2", "chr2", 300, "+", [Region("chr2", 1_000, 1_200)], [1.0])
    g3 = _gene("G3", "chr1", 50_000, "+")  # shares G1's TSS: its own record in the bigBed
    sizes = {"chr1": 100_000, "chr2": 5_000}
    links = browser.link_table([g1, g2])
    rows = browser.interact_rows(links, "interaction")
    path = bigbed.write_biginteract(rows, tmp_path / "links.bb", sizes)
    text = [line.split("\t") for line in browser.write_links(links, tmp_path, "interaction")[1].read_text()
            .splitlines()[1:]]
    r = pybigtools.open(str(path))
    got = [(c, *rec) for c in ("chr1", "chr2") for rec in r.records(c)]
    assert [[str(v) for v in g] for g in got] == text  # the indexed file holds the text track's records
    assert "table interact" in r.sql() and "targetStrand" in r.sql()
    bb = pyBigWig.open(str(path))
    assert bb.isBigBed() and len(bb.entries("chr1", 0, 100_000)) == 2
    values = pd.Series({"G1": 0.25, "G2": -0.5, "G3": 1.0})
    p = bigbed.write_prediction_bigbed([g1, g2, g3], values, tmp_path / "pred.bb", sizes, width=1000)
    recs = {rec[2]: rec for c in ("chr1", "chr2") for rec in pybigtools.open(str(p)).records(c)}
    assert recs["G1"] == (49_500, 50_500, "G1", "250", "-", "0.25") and recs["G3"][5] == "1"
    assert recs["G2"] == (0, 800, "G2", "500", "+", "-0.5")  # cut at the chromosome's start
    with pytest.raises(UsageError, match="outside the chromosome sizes"):
        bigbed.write_prediction_bigbed([g1], values, tmp_path / "x.bb", {"chr2": 5_000}, width=1000)
    assert not (tmp_path / "x.bb").exists()
