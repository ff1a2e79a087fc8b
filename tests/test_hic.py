"""Hi-C .cool -> observed/expected other ends: known answers against a dense, independent computation.

Expected values average valid pixels only (cooltools' balanced.avg): a masked bin (NaN
weight) counts neither as a zero nor as a pair. Skipped when cooler is not installed.
"""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pandas as pd
import pytest

from chromoformer.errors import InteractionError

cooler = pytest.importorskip("cooler")
from chromoformer.preprocess import hic_files, hic_scores  # noqa: E402
from hic_files import write_hic  # noqa: E402

RES, N = 1000, 30


def _make(tmp_path, weights=True, seed=0):
    rng = np.random.default_rng(seed)
    bins = pd.DataFrame({"chrom": ["chr1"] * N + ["chr2"] * N,
                         "start": np.r_[np.arange(N), np.arange(N)] * RES,
                         "end": (np.r_[np.arange(N), np.arange(N)] + 1) * RES})
    rows = []
    for off in (0, N):
        for i in range(N):
            for j in range(i, N):
                c = int(rng.poisson(200 / (1 + j - i)))
                if c:
                    rows.append((off + i, off + j, c))
    rows.append((3, N + 4, 50))  # a trans contact: never a pCRE
    pixels = pd.DataFrame(rows, columns=["bin1_id", "bin2_id", "count"]).sort_values(["bin1_id", "bin2_id"])
    path = str(tmp_path / "m.cool")
    cooler.create_cooler(path, bins, pixels)
    w = rng.uniform(0.5, 2.0, 2 * N)
    w[7] = np.nan  # a masked bin on chr1
    if weights:
        with cooler.Cooler(path).open("r+") as f:
            f["bins"].create_dataset("weight", data=w)
    return path, w, pixels


def _dense_oe(pixels, w, chrom_off, max_d):
    """Independent: the dense balanced chr matrix with masked rows/cols as NaN; expected = nanmean per diagonal."""
    m = np.zeros((N, N))
    for i, j, c in pixels.itertuples(index=False):
        if chrom_off <= i < chrom_off + N and chrom_off <= j < chrom_off + N:
            m[i - chrom_off, j - chrom_off] = m[j - chrom_off, i - chrom_off] = c
    ww = w[chrom_off : chrom_off + N]
    m = m * ww[:, None] * ww[None, :]  # NaN rows/cols for masked bins
    exp = np.array([np.nanmean(np.diagonal(m, d)) for d in range(max_d + 1)])
    return m, exp


@pytest.mark.parametrize("chunk", [10**9, 7])  # one chunk, or many tiny ones: same answer
def test_observed_over_expected_matches_a_dense_computation(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(hic_files, "CHUNK", chunk)
    path, w, pixels = _make(tmp_path)
    genes = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "tss_all": ["12500", "3100;20900", "15000"]})
    max_d = 10
    got = hic_scores.interactions_from_cool(path, genes, max_distance=max_d * RES)
    assert (got.bait_chrom == got.oe_chrom).all()  # no trans contact
    n = 0
    for chrom, off in (("chr1", 0), ("chr2", N)):
        m, exp = _dense_oe(pixels, w, off, max_d)
        for b in {12, 3, 20} if chrom == "chr1" else {15}:
            sub = got[(got.bait_chrom == chrom) & (got.bait_start == b * RES)].set_index("oe_start").score
            want = {j * RES: m[b, j] / exp[abs(j - b)] for j in range(N)
                    if 1 <= abs(j - b) <= max_d and np.isfinite(m[b, j]) and m[b, j] > 0}
            assert set(sub.index) == set(want), (chrom, b)
            np.testing.assert_allclose(sub.loc[list(want)].to_numpy(), list(want.values()), rtol=1e-9)
            n += len(want)
    assert n > 50
    assert 7 * RES not in set(got.oe_start[got.oe_chrom == "chr1"])  # the masked bin is never an other end


def test_raw_counts_and_missing_weights(tmp_path):
    path, _, pixels = _make(tmp_path, weights=False)
    genes = pd.DataFrame({"chrom": ["chr1"], "tss_all": ["12500"]})
    with pytest.raises(InteractionError, match="no balancing weights column 'weight'.*--weight none"):
        hic_scores.interactions_from_cool(path, genes)
    raw = hic_scores.interactions_from_cool(path, genes, weight=None, max_distance=5 * RES)
    m, exp = _dense_oe(pixels, np.ones(2 * N), 0, 5)
    want = m[12, 17] / exp[5]
    assert raw.set_index("oe_start").score[17 * RES] == pytest.approx(want, rel=1e-12)
    assert raw.oe_start.between(7 * RES, 17 * RES).all()  # nothing beyond max_distance


def test_bins_longer_than_w_max_are_an_error(tmp_path):
    path, _, _ = _make(tmp_path)
    genes = pd.DataFrame({"chrom": ["chr1"], "tss_all": ["12500"]})
    with pytest.raises(InteractionError, match="bins are 1000 bp, longer than w_max=500"):
        hic_scores.interactions_from_cool(path, genes, w_max=500)


def test_wrong_chromosome_naming_and_bad_file(tmp_path):
    path, _, _ = _make(tmp_path)
    with pytest.raises(InteractionError, match="none of the genes' chromosomes"):
        hic_scores.interactions_from_cool(path, pd.DataFrame({"chrom": ["1"], "tss_all": ["100"]}))
    bad = tmp_path / "bad.cool"
    bad.write_text("not hdf5")
    with pytest.raises(InteractionError, match="not a readable .cool"):
        hic_scores.interactions_from_cool(bad, pd.DataFrame({"chrom": ["chr1"], "tss_all": ["100"]}))


def test_tss_past_the_chromosome_end_means_another_assembly(tmp_path):
    path, _, _ = _make(tmp_path)
    with pytest.raises(InteractionError, match="past the end of chr1 .30000 bp.*different assemblies"):
        hic_scores.interactions_from_cool(path, pd.DataFrame({"chrom": ["chr1"], "tss_all": ["12500;45000"]}))


def test_min_score_keeps_only_contacts_above_it_and_feeds_gene_neighbors(tmp_path):
    """Genes on one of two chromosomes; the cut-off applied inside equals filtering afterwards."""
    from chromoformer.preprocess.pcres import gene_neighbors

    path, _, _ = _make(tmp_path)
    genes = pd.DataFrame({"gene_id": ["G1", "G2"], "chrom": ["chr2", "chr2"], "tss_all": ["12500", "3100"]})
    every = hic_scores.interactions_from_cool(path, genes)
    above = hic_scores.interactions_from_cool(path, genes, min_score=1.5)
    assert len(above) < len(every) and (above.score > 1.5).all()
    want = every[every.score > 1.5].reset_index(drop=True)
    pd.testing.assert_frame_equal(above.reset_index(drop=True), want)
    a, b = gene_neighbors(genes, above), gene_neighbors(genes, every)
    assert a.neighbors.tolist() == b.neighbors.tolist() and a.neighbors.str.len().gt(0).all()


def _hic_from(cool_path, out, resolutions=(RES,)):
    return write_hic(cool_path, out, list(resolutions))


def test_hic_gives_the_same_pcres_as_the_cool_of_the_same_contacts(tmp_path):
    path, _, _ = _make(tmp_path, weights=False)
    h = _hic_from(path, tmp_path / "m.hic")
    genes = pd.DataFrame({"chrom": ["chr1", "chr2"], "tss_all": ["12500;3100", "15000"]})
    want = hic_scores.interactions_from_cool(path, genes, weight=None, max_distance=10 * RES)
    got = hic_scores.interactions_from_cool(h, genes, weight=None, max_distance=10 * RES)
    assert len(want) > 30
    key = ["bait_chrom", "bait_start", "oe_chrom", "oe_start"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_dtype=False)
    with pytest.raises(InteractionError, match=r"no normalisation 'KR' in this .hic \(it has: none\)"):
        hic_scores.interactions_from_cool(h, genes, weight="KR")
    # hictkpy ran in a child process, now ended: this process neither imported it nor keeps a child
    assert "hictkpy" not in sys.modules and not multiprocessing.active_children()


def test_hic_resolutions_are_picked_explicitly(tmp_path):
    path, _, _ = _make(tmp_path, weights=False)
    h = _hic_from(path, tmp_path / "multi.hic", (RES, 2 * RES))
    genes = pd.DataFrame({"chrom": ["chr1"], "tss_all": ["12500"]})
    with pytest.raises(InteractionError, match=r"several resolutions \(1000, 2000\); pick one with .*::resolutions/N"):
        hic_scores.interactions_from_cool(h, genes, weight=None)
    with pytest.raises(InteractionError, match="no resolution 5000 bp; the file has 1000, 2000"):
        hic_scores.interactions_from_cool(f"{h}::resolutions/5000", genes, weight=None)
    coarse = hic_scores.interactions_from_cool(f"{h}::resolutions/2000", genes, weight=None, max_distance=10 * RES)
    assert set(coarse.oe_start % (2 * RES)) == {0} and (coarse.bait_start == 12 * RES).all()
    bad = tmp_path / "bad.hic"
    bad.write_text("not a hic file")
    with pytest.raises(InteractionError, match="bad.hic: not a readable .hic file"):
        hic_scores.interactions_from_cool(bad, genes)
    with pytest.raises(InteractionError, match="gone.hic: .hic file not found"):
        hic_scores.interactions_from_cool(tmp_path / "gone.hic", genes)


def test_hic_reader_child_needs_no_main_guard_and_dies_with_its_parent(tmp_path):
    """A script without ``if __name__ == '__main__'`` reads a .hic; kill -9 of it ends the hictkpy child too."""
    import os
    import signal
    import subprocess
    import time

    path, _, _ = _make(tmp_path, weights=False)
    h = _hic_from(path, tmp_path / "m.hic")
    script = tmp_path / "unguarded.py"
    script.write_text(f"import time\nfrom chromoformer.preprocess.hic_files import HicContacts\n"
                      f"h = HicContacts({str(h)!r})\nprint(h.binsize, h._child.proc.pid, flush=True)\n"
                      "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        binsize, child = map(int, parent.stdout.readline().split())
        assert binsize == RES
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        for _ in range(100):  # the child reads EOF on its stdin and exits
            if not _running(child):
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the .hic reader child outlived its parent")
    finally:
        parent.kill()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
