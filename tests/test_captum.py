"""Captum's attributions on a small model: integrated gradients equal the hand-written ones, feature
ablation equals the in-silico perturbation table, DeepLift runs and reports its completeness gap."""

from __future__ import annotations

import pytest
import torch

from chromoformer.config import ChromoformerConfig, TransformerConfig
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.inference.attribution import attributions, gradient_attributions, model_score, perturbation_table
from chromoformer.model import build_model

pytest.importorskip("captum")
from chromoformer.inference.attribution import captum_attributions  # noqa: E402

TINY = ChromoformerConfig(embed=TransformerConfig(1, 2, 16, 16), pairwise_interaction=TransformerConfig(1, 2, 16, 16),
                          regulation=TransformerConfig(1, 2, 16, 16), d_head=8)


@pytest.fixture(scope="module")
def model_and_batch(synthetic):
    meta, npy = synthetic
    torch.manual_seed(0)
    m = build_model("clf", TINY).eval().double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    ds = ChromoformerDataset(read_metadata(meta)[:5], NpyDirSource(npy), TINY)
    b = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    for k in ("promoter_feats", "pcre_feats"):
        b[k] = {r: t.double() for r, t in b[k].items()}
    b["interaction_freq"] = b["interaction_freq"].double()
    assert int(b["n_pcres"].max()) >= 2
    return m, b


def _close(a, b, tol):
    for part in ("promoter", "pcre"):
        for r in a[part]:
            torch.testing.assert_close(a[part][r], b[part][r], rtol=0, atol=tol)


def test_integrated_gradients_agree_with_the_hand_written_ones(model_and_batch):
    m, b = model_and_batch
    theirs, delta = captum_attributions(m, b, "integrated-gradients", steps=16)
    _close(theirs, gradient_attributions(m, b, steps=16), 1e-12)
    _close(attributions(m, b, steps=16), theirs, 1e-12)  # the default path is Captum's
    # completeness: attributions sum to the score change from the zero baseline, up to the 16-step error
    total = sum(a.flatten(1).sum(1) for part in theirs.values() for a in part.values())
    zero = {**b, "promoter_feats": {r: torch.zeros_like(t) for r, t in b["promoter_feats"].items()},
            "pcre_feats": {r: torch.zeros_like(t) for r, t in b["pcre_feats"].items()}}
    with torch.no_grad():
        change = model_score(m, b) - model_score(m, zero)
    torch.testing.assert_close(total - change, delta, rtol=0, atol=1e-9)


def test_feature_ablation_equals_the_perturbation_table(model_and_batch):
    m, b = model_and_batch
    fa, _ = captum_attributions(m, b, "feature-ablation")
    table = perturbation_table(m, b, marks=[f"m{i}" for i in range(7)]).set_index(["gene_id", "perturbation",
                                                                                  "target"]).delta
    r = min(fa["promoter"])
    n = 0
    for i, gid in enumerate(b["gene_id"]):
        for k in range(7):
            assert float(fa["promoter"][r][i, 0, k]) == pytest.approx(-table[(gid, "zero_mark_promoter", f"m{k}")],
                                                                      abs=1e-10)
            for j in range(int(b["n_pcres"][i])):
                assert float(fa["pcre"][r][i, j, 0, k]) == pytest.approx(
                    -table[(gid, "zero_mark_pcre", f"pcre{j}:m{k}")], abs=1e-10)
                n += 1
    assert n > 20


def test_deeplift_runs_and_reports_its_gap(model_and_batch):
    m, b = model_and_batch
    dl, delta = captum_attributions(m, b, "deeplift")
    assert delta.shape == (5,) and torch.isfinite(delta).all()
    assert all(torch.isfinite(a).all() for part in dl.values() for a in part.values())
    assert dl["promoter"][100].shape == b["promoter_feats"][100].shape
