"""Real Hi-C: cooler's GM12878 MboI read pairs (hg19, Rao et al. 2014) binned at 10 and 40 kb by
cooler itself; observed/expected of every TSS bin's contacts checked against cooltools'
``expected_cis`` (an independent implementation of the valid-pixel average) on 50 genes.

Weights: raw counts, and a coverage weight column (1/sqrt(row sum), NaN for empty bins, so
masked bins are exercised). Skipped when cooler's test data or cooltools is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

cooler = pytest.importorskip("cooler")
expected_api = pytest.importorskip("cooltools.api.expected")
from chromoformer.preprocess.hic_scores import interactions_from_cool  # noqa: E402
from hic_files import write_hic  # noqa: E402
from real_data import cool_from_pairs, cooler_testdata  # noqa: E402

MAX_D, MIN_SCORE = 2_000_000, 1.5


@pytest.fixture(scope="module", params=[10_000, pytest.param(40_000, marks=pytest.mark.slow)])  # 40 kb: slow suite
def cool(request, tmp_path_factory):
    res = request.param
    path = cool_from_pairs(cooler_testdata(), res, tmp_path_factory.mktemp("hic") / f"gm12878.{res}.cool")
    clr = cooler.Cooler(str(path))
    cov = np.zeros(len(clr.bins()))
    px = clr.pixels()[:]
    np.add.at(cov, px.bin1_id.to_numpy(), px["count"].to_numpy())
    np.add.at(cov, px.bin2_id.to_numpy(), px["count"].to_numpy())
    with np.errstate(divide="ignore"):
        w = np.where(cov > 0, 1 / np.sqrt(cov), np.nan)
    with clr.open("r+") as f:
        f["bins"].create_dataset("cov", data=w)
    return str(path), res


def _genes(clr, res, n_top=40, n_random=10):
    """The bins with most cis contacts (so that many have pCREs) and random ones; TSS inside the bin."""
    px = clr.pixels(join=True)[:]
    cis = px[(px.chrom1 == px.chrom2) & (px.start2 > px.start1) & (px.start2 - px.start1 <= MAX_D)]
    ends = pd.concat([cis[["chrom1", "start1"]].set_axis(["chrom", "start"], axis=1),
                      cis[["chrom2", "start2"]].set_axis(["chrom", "start"], axis=1)])
    top = ends.value_counts().index[:n_top]
    bins = clr.bins()[["chrom", "start"]][:]
    rnd = bins.sample(n_random, random_state=0)
    chrom = [c for c, _ in top] + list(rnd.chrom.astype(str))
    tss = [s + res // 3 for _, s in top] + list(rnd.start + res // 2)
    return pd.DataFrame({"chrom": chrom, "tss_all": [str(t) for t in tss]})


def _reference(clr, res, genes, weight):
    """Every (TSS bin, other bin) with cooltools-based observed/expected > MIN_SCORE, 1 <= d <= MAX_D / res."""
    exp = expected_api.expected_cis(clr, clr_weight_name=weight, ignore_diags=0, smooth=False)
    col = "balanced.avg" if weight else "count.avg"
    e = exp.set_index(["region1", "dist"])[col]
    bins = clr.bins()[:]
    w = bins[weight].to_numpy() if weight else np.ones(len(bins))
    px = clr.pixels()[:]
    b1, b2 = px.bin1_id.to_numpy(), px.bin2_id.to_numpy()
    chrom = bins.chrom.astype(str).to_numpy()
    d = b2 - b1
    keep = (chrom[b1] == chrom[b2]) & (d >= 1) & (d <= MAX_D // res) & np.isfinite(w[b1]) & np.isfinite(w[b2])
    b1, b2, d = b1[keep], b2[keep], d[keep]
    v = px["count"].to_numpy()[keep] * w[b1] * w[b2]
    oe = v / e.loc[list(zip(chrom[b1], d, strict=True))].to_numpy()
    tss = {clr.offset((c, int(t), int(t) + 1)) for c, t in zip(genes.chrom, genes.tss_all, strict=True)}
    ref = {}
    for a, b in ((b1, b2), (b2, b1)):
        for i in np.flatnonzero(np.isin(a, list(tss)) & (oe > MIN_SCORE)):
            ref[(chrom[a[i]], int(bins.start[a[i]]), int(bins.start[b[i]]))] = oe[i]
    return ref


@pytest.mark.parametrize("weight", [None, "cov"])
def test_observed_over_expected_equals_cooltools_on_real_pairs(cool, weight):
    path, res = cool
    clr = cooler.Cooler(path)
    genes = _genes(clr, res)
    out = interactions_from_cool(path, genes, weight=weight, max_distance=MAX_D, w_max=40_000, min_score=MIN_SCORE)
    ref = _reference(clr, res, genes, weight)
    got = {(r.bait_chrom, int(r.bait_start), int(r.oe_start)): r.score for r in out.itertuples()}
    assert len(got) == len(out)  # no duplicates
    assert got.keys() == ref.keys()
    assert out.groupby(["bait_chrom", "bait_start"]).ngroups >= 30  # genes with at least one pCRE compared
    keys = list(ref)
    np.testing.assert_allclose([got[k] for k in keys], [ref[k] for k in keys], rtol=1e-9)
    dist = (out.oe_start - out.bait_start).abs()
    assert dist.max() <= MAX_D and dist.min() >= res  # the cap holds; the TSS bin itself is never its own pCRE
    assert ((out.oe_end - out.oe_start) <= res).all()


@pytest.mark.slow  # in the slow suite (.ci/run): keeps the default run under 5 minutes
@pytest.mark.parametrize("cool", [40_000], indirect=True)
def test_hic_of_the_real_pairs_gives_the_cool_pcres(cool, tmp_path):
    """The same binned contacts written as .hic (hictkpy): identical pCREs; its sizes name hg19."""
    from chromoformer.preprocess.assembly import of_file

    path, res = cool
    clr = cooler.Cooler(path)
    h = str(write_hic(path, tmp_path / "gm12878.hic", [res], assembly="hg19"))
    genes = _genes(clr, res)
    want = interactions_from_cool(path, genes, weight=None, max_distance=MAX_D, w_max=40_000, min_score=MIN_SCORE)
    got = interactions_from_cool(h, genes, weight=None, max_distance=MAX_D, w_max=40_000, min_score=MIN_SCORE)
    key = ["bait_chrom", "bait_start", "oe_chrom", "oe_start"]
    assert len(want) > 100
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert of_file(h, "contacts") == ("hg19", "chr1 is 249,250,621 bp") == of_file(path, "contacts")
