"""The differential models (BASELINES.md §3): DeepDiff raw_aux_siamese and Chromoformer-diff; their
parameter counts, a literal float64 re-computation of DeepDiff, Chromoformer-diff's single-cell model,
and DeepDiff's objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chromoformer import ChromoformerConfig
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.model import ChromoformerDiff, ChromoformerRegressor, DeepDiff
from chromoformer.training.objective import contrastive_loss, deepdiff_loss
from literal import lstm_direction


def _batch(synthetic, n=6, offset=0):
    meta, npy = synthetic
    ds = ChromoformerDataset(read_metadata(meta)[offset:offset + n], NpyDirSource(npy), ChromoformerConfig())
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n)))


def _double(batch):
    return {k: ({b: t.double() for b, t in v.items()} if isinstance(v, dict) and k.endswith("feats")
                else v.double() if k == "interaction_freq" else v) for k, v in batch.items()}


def _n(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_deepdiff_parameter_counts_equal_baselines_md():
    assert _n(DeepDiff(5)) == 212_163 and _n(DeepDiff(7)) == 284_355
    m = DeepDiff(5)
    assert len(m.raw_bins) == 15 and len(m.cell_bins) == 5  # the cells' bin encoders exist once: shared
    assert all(p.min() >= -0.1 and p.max() <= 0.1 for p in m.parameters())  # U(-0.1, 0.1)


def _encode(sd, prefix, xs):
    """Bin or mark encoder: BiLSTM then softmax(h . v) attention; xs (T, d_in)."""
    g = {k: sd[f"{prefix}.lstm.{k}"] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
    r = {k: sd[f"{prefix}.lstm.{k}_reverse"] for k in g}
    h = np.concatenate([lstm_direction(xs, *g.values()), lstm_direction(xs[::-1], *r.values())[::-1]], 1)
    e = h @ sd[f"{prefix}.attention.v"]
    w = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    return (w[:, None] * h).sum(0)


def _deepdiff_literal(sd, xa, xb):
    """One gene: xa, xb (200, F) -> lfc, aux_a, aux_b."""
    f = xa.shape[1]
    raw = np.concatenate([xa, xb, xa - xb], 1)
    raw_tok = [_encode(sd, f"raw_bins.{k}", raw[:, k:k + 1]) for k in range(3 * f)]
    ca = [_encode(sd, f"cell_bins.{k}", xa[:, k:k + 1]) for k in range(f)]
    cb = [_encode(sd, f"cell_bins.{k}", xb[:, k:k + 1]) for k in range(f)]
    main = _encode(sd, "mark_main", np.array(raw_tok + ca + cb))
    lin = lambda name, x: sd[f"{name}.weight"] @ x + sd[f"{name}.bias"]  # noqa: E731
    return (lin("head", main)[0], lin("aux_a", _encode(sd, "mark_a", np.array(ca)))[0],
            lin("aux_b", _encode(sd, "mark_b", np.array(cb)))[0])


def test_deepdiff_equals_literal_recomputation(synthetic):
    a, b = _double(_batch(synthetic, 3)), _double(_batch(synthetic, 3, offset=3))  # two "cells"
    torch.manual_seed(0)
    m = DeepDiff(7).double().eval()
    with torch.no_grad():
        out = m(a, b)
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    for i in range(3):
        xa, xb = (x["promoter_feats"][100][i, 100:300].numpy() for x in (a, b))
        want = _deepdiff_literal(sd, xa, xb)
        got = (out["lfc"][i, 0].item(), out["expr_a"][i, 0].item(), out["expr_b"][i, 0].item())
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_deepdiff_siamese_encoders_serve_both_cells(synthetic):
    a, b = _batch(synthetic, 4), _batch(synthetic, 4, offset=4)
    torch.manual_seed(0)
    m = DeepDiff(7).eval()
    with torch.no_grad():
        same = m(a, a)
        torch.testing.assert_close(same["emb_a"], same["emb_b"], rtol=0, atol=0)  # one encoder for both
        before = m(a, b)
        m.cell_bins[0].attention.v.add_(0.05)
        after = m(a, b)
    assert not torch.equal(before["expr_a"], after["expr_a"]) and not torch.equal(before["expr_b"], after["expr_b"])


def test_chromoformer_diff_carries_the_single_cell_model(synthetic):
    a, b = _batch(synthetic, 5), _batch(synthetic, 5, offset=5)
    torch.manual_seed(0)
    m = ChromoformerDiff().eval()
    assert _n(m) == 5_342_543 + 3 * 384 * 128 + 128 + 128 + 1  # the regressor plus the fold-change head
    single = ChromoformerRegressor().eval()
    single.load_state_dict(m.encoder.state_dict())  # the single-cell model, strictly
    with torch.no_grad():
        out, swapped = m(a, b), m(b, a)
        torch.testing.assert_close(out["expr_a"], single(**a), rtol=0, atol=0)
        torch.testing.assert_close(out["expr_b"], single(**b), rtol=0, atol=0)
        ea, eb = m.encoder.embedding(**a), m.encoder.embedding(**b)
        h = m.diff_head

        def head(x, y):
            return h[2](torch.relu(h[0](torch.cat([x, y, y - x], -1))))

        want = (head(ea, eb) - head(eb, ea)) / 2
    torch.testing.assert_close(out["lfc"], want, rtol=0, atol=0)
    torch.testing.assert_close(swapped["expr_a"], out["expr_b"], rtol=0, atol=0)


def test_chromoformer_diff_fold_change_is_antisymmetric_by_construction(synthetic):
    """For any weights (here random, untrained): identical cells give a fold change of exactly 0, and swapping
    cell A and cell B negates it exactly; each cell's expression follows its own input."""
    a, b = _batch(synthetic, 5), _batch(synthetic, 5, offset=5)
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = ChromoformerDiff().eval()
        with torch.no_grad():
            ab, ba, aa = m(a, b), m(b, a), m(a, a)
        assert torch.equal(aa["lfc"], torch.zeros_like(aa["lfc"]))
        assert torch.equal(ba["lfc"], -ab["lfc"]) and ab["lfc"].abs().max() > 0
        assert torch.equal(ba["expr_a"], ab["expr_b"]) and torch.equal(aa["expr_a"], aa["expr_b"])


def test_deepdiff_objective_known_answer():
    emb_a = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    emb_b = torch.tensor([[3.0, 4.0], [1.0, 2.0]], dtype=torch.float64)  # distances 5 and 1
    lfc = torch.tensor([2.5, -0.5], dtype=torch.float64)  # |lfc| >= 2: push apart; else pull together
    # gene 0 apart with d > margin 2: 0; gene 1 together: d^2 with F.pairwise_distance's eps 1e-6 added to the
    # difference (DeepDiff's SiameseLoss.py): (0 + 1e-6)^2 + (-1 + 1e-6)^2 -> mean over the two genes
    near = ((1e-6) ** 2 + (1 - 1e-6) ** 2) / 2
    assert contrastive_loss(emb_a, emb_b, lfc.abs() >= 2).item() == pytest.approx(near, rel=1e-13, abs=0)
    assert near != pytest.approx(0.5, rel=1e-9, abs=0)  # the eps is visible at this tolerance
    d1 = ((1e-6) ** 2 + (-1 + 1e-6) ** 2) ** 0.5
    assert contrastive_loss(emb_a, emb_b, torch.tensor([True, True])).item() == pytest.approx(
        (0 + (2 - d1) ** 2) / 2, rel=1e-13, abs=0)
    out = {"lfc": torch.tensor([[2.0], [0.0]], dtype=torch.float64), "expr_a": torch.zeros(2, 1, dtype=torch.float64),
           "expr_b": torch.ones(2, 1, dtype=torch.float64), "emb_a": emb_a, "emb_b": emb_b}
    ea, eb = torch.tensor([1.0, 3.0], dtype=torch.float64), torch.tensor([1.0, 1.0], dtype=torch.float64)
    want = ((0.5**2 + 0.5**2) / 2) + ((1 + 9) / 2) + 0 + 4 * near
    assert deepdiff_loss(out, lfc, ea, eb).item() == pytest.approx(want, rel=1e-13, abs=0)
