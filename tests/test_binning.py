"""Binning known answers (docs/original.md §3.3) on hand-made arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chromoformer import ChromoformerConfig
from chromoformer.data import BinnedStore, ChromoformerDataset, NpyDirSource, build_store_from_npy, read_metadata
from chromoformer.data.binning import base_sums, bin_log_means, log1p_f32, pad_centered
from chromoformer.data.sources import promoter_region


def ln1(v) -> np.ndarray:
    """ln(v + 1) in float32 with torch's log, as the original computes it."""
    return torch.log(torch.as_tensor(np.asarray(v, np.float32)) + 1).numpy()


def test_bin_means_with_partial_last_bin():
    # one mark, 250 bp: bases 0..99 = 2, 100..199 = 4, 200..249 = 8 -> bins of 100: means 2, 4, 8
    x = np.concatenate([np.full(100, 2.0), np.full(100, 4.0), np.full(50, 8.0)])[None].astype(np.float16)
    s = base_sums(x.astype(np.float32), 50)
    np.testing.assert_array_equal(bin_log_means(s, 250, 50, 100)[:, 0], ln1([2, 4, 8]))
    # 200-bp bins: (2*100 + 4*100)/200 = 3, then the last 50 bases alone: 8
    np.testing.assert_array_equal(bin_log_means(s, 250, 50, 200)[:, 0], ln1([3, 8]))


def test_natural_log_of_mean_plus_one_is_exact():
    x = np.zeros((2, 1000), np.float32)
    x[0, :500] = np.e - 1  # mean over 500 = e - 1 -> ln(e) = 1
    x[1, 500:] = 1.0
    out = bin_log_means(base_sums(x, 100), 1000, 100, 500)
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, math.log(2)]], rtol=1e-6)


def test_bin_size_must_be_multiple_of_base():
    with pytest.raises(ValueError, match="not a multiple"):
        bin_log_means(np.zeros((4, 1)), 400, 100, 250)


@pytest.mark.parametrize("n,nb,left", [(3, 8, 3), (4, 8, 2), (1, 20, 10), (20, 20, 0), (7, 10, 2)])
def test_centred_padding_left_is_ceil(n, nb, left):
    frame, start = pad_centered(np.ones((n, 2), np.float32), nb)
    assert start == left == math.ceil((nb - n) / 2)
    assert frame[start : start + n].all() and frame.sum() == 2 * n


def test_flip_reverses_frame_and_swaps_pads():
    feats = np.arange(3, dtype=np.float32)[:, None]
    frame, start = pad_centered(feats, 8, flip=True)  # left pad 3, right 2 -> flipped: left 2
    assert start == 2
    np.testing.assert_array_equal(frame[:, 0], [0, 0, 2, 1, 0, 0, 0, 0])


def _write_gene(tmp_path, strand):
    """One gene, TSS 50,000, every 100-bp bin b of the promoter has depth b (so bin index is readable)."""
    npy = tmp_path / "npy"
    npy.mkdir()
    tss = 50_000
    x = np.repeat(np.arange(400, dtype=np.float32), 100)[None].repeat(7, 0)
    x[3] = 0
    np.save(npy / f"chr1:{tss - 20000}-{tss + 20000}.npy", x.astype(np.float16))
    pcre = np.full((7, 1234), 3.0, np.float16)  # 13 bins of 100 bp, last has 34 bp
    np.save(npy / "chr1:200000-201234.npy", pcre)
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "gene_id,label,chrom,start,end,strand,split,neighbors,scores\n"
        f"G1,1,chr1,{tss},{tss + 1},{strand},1,chr1:200000-201234,2.5\n"
    )
    return meta, npy


@pytest.mark.parametrize("strand", ["+", "-"])
def test_item_known_answers_and_strand_flip(tmp_path, strand):
    meta, npy = _write_gene(tmp_path, strand)
    ds = ChromoformerDataset(read_metadata(meta), NpyDirSource(npy), ChromoformerConfig())
    item = ds[0]
    p100 = item["promoter_feats"][100][:, 0].numpy()
    want = ln1(np.arange(400))
    np.testing.assert_array_equal(p100, want if strand == "+" else want[::-1])
    # TSS bin nb//2 covers [TSS, TSS+b) for '+', and [TSS-b, TSS) for '-'
    assert p100[200] == ln1(200 if strand == "+" else 199)
    p2000 = item["promoter_feats"][2000][:, 0].numpy()  # mean of 20 consecutive 100-bp values
    assert p2000[10] == ln1((200 + 219) / 2 if strand == "+" else (180 + 199) / 2)
    assert (item["promoter_feats"][100][:, 3] == 0).all()
    assert item["promoter_bins"][100].tolist() == [0, 400]
    # pCRE: 13 bins at 100 bp centred in 400 (left pad ceil(387/2) = 194), never flipped
    assert item["pcre_bins"][100][0].tolist() == [194, 13]
    assert item["pcre_bins"][500][0].tolist() == [39, 3]  # ceil(1234/500) = 3, left = ceil(77/2)
    pc = item["pcre_feats"][100][0, :, 0].numpy()
    assert (pc[194:207] == ln1(3)).all() and pc[:194].sum() == 0 and pc[207:].sum() == 0
    assert item["n_pcres"] == 1 and item["interaction_freq"].tolist() == [2.5] + [0.0] * 7
    assert (item["pcre_feats"][100][1:] == 0).all() and (item["pcre_bins"][100][1:] == 0).all()


def test_store_gives_identical_items_and_is_compact(tmp_path, synthetic):
    meta, npy = synthetic
    store = build_store_from_npy(npy, tmp_path / "store")
    cfg = ChromoformerConfig()
    genes = read_metadata(meta)
    a = ChromoformerDataset(genes, NpyDirSource(npy), cfg)
    b = ChromoformerDataset(genes, BinnedStore(store.path), cfg)
    for i in range(len(genes)):
        x, y = a[i], b[i]
        for k in ("promoter_feats", "pcre_feats", "promoter_bins", "pcre_bins"):
            for bs in (2000, 500, 100):
                assert torch.equal(x[k][bs], y[k][bs]), (i, k, bs)
    npy_bytes = sum(p.stat().st_size for p in npy.glob("*.npy"))
    store_bytes = sum(p.stat().st_size for p in store.path.iterdir())
    assert store_bytes * 20 < npy_bytes


def test_promoter_window_crop(tmp_path):
    meta, npy = _write_gene(tmp_path, "+")
    cfg = ChromoformerConfig.from_dict({**ChromoformerConfig().to_dict(), "w_prom": 20000})
    item = ChromoformerDataset(read_metadata(meta), NpyDirSource(npy), cfg)[0]
    # centre 20 kb = 100-bp bins 100..299, padded to 400 with 100 zeros each side
    p = item["promoter_feats"][100][:, 0].numpy()
    assert item["promoter_bins"][100].tolist() == [100, 200]
    np.testing.assert_array_equal(p[100:300], ln1(np.arange(100, 300)))
    assert p[:100].sum() == 0 and p[300:].sum() == 0
    store = build_store_from_npy(npy, tmp_path / "store")
    item2 = ChromoformerDataset(read_metadata(meta), store, cfg)[0]
    assert torch.equal(item2["promoter_feats"][100], item["promoter_feats"][100])


def test_log_is_elementwise_wherever_a_value_sits():
    """One ``log1p_f32`` call over an item's concatenated means gives the bits of one call per piece."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        parts = [(rng.random(int(n)) * 10.0 ** rng.integers(0, 7)).astype(np.float32)
                 for n in rng.integers(1, 900, size=rng.integers(1, 30))]
        assert np.array_equal(log1p_f32(np.concatenate(parts)), np.concatenate([log1p_f32(p) for p in parts]))


def _literal_log_means(sums: np.ndarray, length: int, base: int, b: int) -> np.ndarray:
    """docs/original.md §3.3 written out: bin sums over ``b // base`` base bins, each bin's mean over the bases it
    has, float32, then torch's ``log(mean + 1)``: one call per region and bin size, as before."""
    k, n = b // base, math.ceil(length / b)
    grown = np.zeros((n * k, sums.shape[1]))
    grown[: len(sums)] = sums
    counts = np.array([min(b, length - j * b) for j in range(n)], np.float64)
    means = torch.from_numpy((grown.reshape(n, k, -1).sum(axis=1) / counts[:, None]).astype(np.float32))
    return torch.log(means + 1).numpy()


def _literal_frame(feats: np.ndarray, nb: int, flip: bool) -> tuple[np.ndarray, int]:
    frame = np.zeros((nb, feats.shape[1]), np.float32)
    left = math.ceil((nb - len(feats)) / 2)
    frame[left : left + len(feats)] = feats
    return (frame[::-1], nb - left - len(feats)) if flip else (frame, left)


def _literal_item_frames(ds: ChromoformerDataset, i: int) -> dict:
    """An item's frames and spans computed region by region, bin size by bin size, from the store's sums."""
    g, src = ds.genes[i], ds.source
    region, crop = promoter_region(src, g, ds.w_prom)
    length = len(region) if crop is None else crop[1] - crop[0]
    regions = [(src.region_sums(region, crop, g.gene_id), length, g.strand == "-")]
    regions += [(src.region_sums(r, None, g.gene_id), len(r), False) for r in g.pcres]
    out = {}
    for b in ds.binsizes:
        feats = [_literal_log_means(s, n, src.base, b) for s, n, _ in regions]
        frames = [_literal_frame(f, ds.w_max // b, flip) for f, (_, _, flip) in zip(feats, regions, strict=True)]
        pcres = np.zeros((ds.i_max, ds.w_max // b, ds.n_feats), np.float32)
        spans = np.zeros((ds.i_max, 2), np.int64)
        for j, ((f, start), x) in enumerate(zip(frames[1:], feats[1:], strict=True)):
            pcres[j], spans[j] = f, (start, len(x))
        out[b] = frames[0][0], [frames[0][1], len(feats[0])], pcres, spans
    return out


@pytest.mark.parametrize("w_prom", [40000, 20000])
def test_item_equals_one_log_per_region_and_bin_size(tmp_path, w_prom):
    """Non-integer signal, both strands, partial last bins, 0..i_max pCREs, a cropped promoter: every frame and
    span of an item is bit-identical to the per-region computation (and so to the original, docs/original.md §3.3)."""
    rng = np.random.default_rng(7)
    npy = tmp_path / "npy"
    npy.mkdir()
    rows = []
    for k in range(24):
        tss = 1_000_000 * (k + 1)
        np.save(npy / f"chr1:{tss - 20000}-{tss + 20000}.npy", (rng.random((7, 40000)) * 9).astype(np.float16))
        ends = []
        for j in range(k % 9):
            lo, n = tss + 100_000 + 30_000 * j, int(rng.integers(1, 12_000))
            np.save(npy / f"chr1:{lo}-{lo + n}.npy", (rng.random((7, n)) * 3).astype(np.float16))
            ends.append(f"chr1:{lo}-{lo + n}")
        rows.append(f"G{k},{k % 2},chr1,{tss},{tss + 1},{'+-'[k % 2]},1,{';'.join(ends)},"
                    f"{';'.join(['2.0'] * len(ends))}")
    meta = tmp_path / "meta.csv"
    meta.write_text("gene_id,label,chrom,start,end,strand,split,neighbors,scores\n" + "\n".join(rows) + "\n")
    cfg = ChromoformerConfig.from_dict({**ChromoformerConfig().to_dict(), "w_prom": w_prom})
    genes = read_metadata(meta)
    for src in (NpyDirSource(npy), build_store_from_npy(npy, tmp_path / "store")):
        ds = ChromoformerDataset(genes, src, cfg)
        for i in range(len(genes)):
            item, want = ds[i], _literal_item_frames(ds, i)
            for b, (prom, prom_span, pcres, spans) in want.items():
                assert np.array_equal(item["promoter_feats"][b].numpy(), prom), (i, b)
                assert item["promoter_bins"][b].tolist() == prom_span, (i, b)
                assert np.array_equal(item["pcre_feats"][b].numpy(), pcres), (i, b)
                assert np.array_equal(item["pcre_bins"][b].numpy(), spans), (i, b)
