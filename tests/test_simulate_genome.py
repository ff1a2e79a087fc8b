"""Genome-scale simulation: the fast BAM writer against pysam and the SAM specification, and a small
fraction of the whole-genome simulation read back."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from chromoformer.preprocess.bam_writer import SortedBamWriter, reg2bin

pysam = pytest.importorskip("pysam")
needs_samtools = pytest.mark.skipif(shutil.which("samtools") is None, reason="samtools not installed")


def _reg2bin_spec(beg: int, end: int) -> int:  # SAM specification 5.3, literally
    end -= 1
    if beg >> 14 == end >> 14:
        return ((1 << 15) - 1) // 7 + (beg >> 14)
    if beg >> 17 == end >> 17:
        return ((1 << 12) - 1) // 7 + (beg >> 17)
    if beg >> 20 == end >> 20:
        return ((1 << 9) - 1) // 7 + (beg >> 20)
    if beg >> 23 == end >> 23:
        return ((1 << 6) - 1) // 7 + (beg >> 23)
    if beg >> 26 == end >> 26:
        return ((1 << 3) - 1) // 7 + (beg >> 26)
    return 0


def test_reg2bin_follows_the_specification():
    rng = np.random.default_rng(0)
    beg = np.r_[rng.integers(0, 2**29 - 100, 5000), [16348, 16383, 131035, 0, 2**26 - 10]]
    for length in (1, 36, 5000, 200_000):
        want = [_reg2bin_spec(int(b), int(b) + length) for b in beg]
        assert reg2bin(beg, beg + length).tolist() == want


@needs_samtools
def test_written_bam_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    chroms = {"chr2": 3_000_000, "chr10": 1_000_000}
    truth = {c: (np.sort(rng.integers(0, n - 36, 30_000)), rng.random(30_000) < 0.5) for c, n in chroms.items()}
    with SortedBamWriter(tmp_path / "x.bam", chroms) as w:
        for c, (s, r) in truth.items():
            w.add(c, s, r, chunk=7_000)
    assert not (tmp_path / ".x.bam.tmp").exists()
    with pysam.AlignmentFile(str(tmp_path / "x.bam")) as f:
        assert dict(zip(f.references, f.lengths, strict=True)) == chroms and f.header["HD"]["SO"] == "coordinate"
        for c, (s, r) in truth.items():
            got = list(f.fetch(c))
            assert [a.reference_start for a in got] == s.tolist() and [a.is_reverse for a in got] == r.tolist()
            assert {a.cigarstring for a in got} == {"36M"} and {a.mapping_quality for a in got} == {60}
        names = [a.query_name for a in f.fetch("chr10")]
        assert names[0] == "00030000" and len(set(names)) == 30_000
        assert f.count("chr2", 1_000_000, 1_200_000) == int(((truth["chr2"][0] + 36 > 1_000_000)
                                                              & (truth["chr2"][0] < 1_200_000)).sum())
    with pytest.raises(ZeroDivisionError), SortedBamWriter(tmp_path / "y.bam", chroms) as w:
        w.add("chr2", truth["chr2"][0][:10], truth["chr2"][1][:10])
        1 / 0  # noqa: B018 - a failing writer leaves nothing behind
    assert not list(tmp_path.glob("*y.bam*"))


@needs_samtools
def test_a_fraction_of_the_genome(tmp_path):
    from chromoformer.preprocess.simulate import CHROMHMM
    from chromoformer.preprocess.simulate_genome import HG19, GenomeSimConfig, simulate_genome

    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    p = simulate_genome(tmp_path, GenomeSimConfig(fraction=0.01, reads_per_mark=5_000_000))
    sizes = pd.read_csv(p["sizes"], sep="\t", header=None, index_col=0)[1].to_dict()
    assert list(sizes) == list(HG19) and all(abs(sizes[c] - HG19[c] * 0.01) < 200 for c in HG19)
    truth = pd.read_csv(p["truth"], sep="\t")
    assert len(truth) == 190 and truth.gene_id.is_unique
    expr = pd.read_csv(p["expression"], sep="\t")
    assert (expr.gene_id == truth.gene_id).all() and (expr.SIM >= 0).all()
    with pysam.AlignmentFile(str(p["bam_H3K4me3"])) as f:
        n = sum(s.mapped for s in f.get_index_statistics())
    assert abs(n - 50_000) < 5 * np.sqrt(50_000)  # 5 M x 1%, Poisson
    # promoters look like promoters: the pasted real TSS windows carry H3K4me3 more often than background
    assert truth.promoter_activity.mean() > 0.05
    pchic = pd.read_csv(p["pchic"], sep="\t")
    d = (pchic.oe_start - pchic.bait_start).abs()
    # the bait is the TSS fragment (2-12 kb), the other ends 20-500 kb from the TSS
    assert d.between(20_000 - 12_000, 500_000 + 12_000).all() and set(pchic.bait_chrom) <= set(HG19)
