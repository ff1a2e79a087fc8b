"""Interpretation and baselines."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from chromoformer import ChromoformerClassifier, ChromoformerConfig
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.inference.attribution import (
    attributions,
    drop_pcre,
    model_score,
    perturbation_table,
    regulation_attention_table,
    zero_mark,
)
from chromoformer.model import build_model
from naive_reference import perturbed_model


def _model(seed=0):
    return perturbed_model(seed=seed)


def _batch(genes, npy, n=None):
    ds = ChromoformerDataset(genes, NpyDirSource(npy), ChromoformerConfig())
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n or len(genes))))


@pytest.fixture(scope="module")
def genes(synthetic):
    return read_metadata(synthetic[0])


def test_attention_rows_sum_to_one_and_masked_positions_are_zero(synthetic, genes):
    m, batch = _model(), _batch(genes[:6], synthetic[1])
    att: dict = {}
    with torch.no_grad():
        m(**batch, attentions=att)
    for b, per in att.items():
        for kind in ("embed", "pairwise_interaction", "regulation"):
            for w in per[kind]:
                torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5, rtol=0)
        # pairwise: one map per real pCRE; padded pCRE bins get exactly 0
        real = torch.arange(8) < batch["n_pcres"][:, None]
        spans = batch["pcre_bins"][b][real]
        pos = torch.arange(40000 // b)
        pad = (pos < spans[:, :1]) | (pos >= spans[:, :1] + spans[:, 1:])
        for w in per["pairwise_interaction"]:
            assert (w[:, :, 0][pad[:, None].expand(-1, w.shape[1], -1)] == 0).all()
        # regulation: dummy pCRE tokens get exactly 0 from every real token
        dummy = torch.arange(1, 9) > batch["n_pcres"][:, None]
        for w in per["regulation"]:
            assert (w[:, :, 0, 1:][dummy[:, None].expand(-1, w.shape[1], -1)] == 0).all()


def test_drop_pcre_equals_metadata_without_it(synthetic, genes):
    g = next(x for x in genes if len(x.pcres) >= 3)
    m = _model()
    j = 1
    edited = dataclasses.replace(g, pcres=g.pcres[:j] + g.pcres[j + 1 :], scores=g.scores[:j] + g.scores[j + 1 :])
    with torch.no_grad():
        a = model_score(m, drop_pcre(_batch([g], synthetic[1]), j))
        b = model_score(m, _batch([edited], synthetic[1]))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_zero_mark_in_promoter_equals_zero_signal(synthetic, genes, tmp_path):
    import numpy as np

    g = genes[0]
    npy = tmp_path / "npy"
    import shutil

    shutil.copytree(synthetic[1], npy)
    p = npy / f"{g.chrom}:{g.tss - 20000}-{g.tss + 20000}.npy"
    x = np.load(p)
    x[1] = 0
    np.save(p, x)
    m = _model()
    with torch.no_grad():
        a = model_score(m, zero_mark(_batch([g], synthetic[1]), 1, "promoter"))
        b = model_score(m, _batch([g], npy))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("steps", [0, 8])
def test_attributions_zero_where_signal_is_zero(synthetic, genes, steps):
    m, batch = _model(), _batch(genes[:4], synthetic[1])
    for b in batch["promoter_feats"]:
        batch["promoter_feats"][b][:, :50, 2] = 0  # an untouched mark with stretches of zero signal
    att = attributions(m, batch, steps=steps)
    for b, a in att["promoter"].items():
        zero = batch["promoter_feats"][b] == 0
        assert (a[zero] == 0).all() and a.shape == batch["promoter_feats"][b].shape
        assert (a != 0).any()
    for b, a in att["pcre"].items():
        assert (a[batch["pcre_feats"][b] == 0] == 0).all()


def test_integrated_gradients_completeness(synthetic, genes):
    """Sum of IG attributions ~ score(x) - score(0) (32 midpoint steps, default-initialised model)."""
    torch.manual_seed(0)
    m, batch = ChromoformerClassifier().eval(), _batch(genes[:2], synthetic[1])
    att = attributions(m, batch, steps=32)
    total = sum(a.flatten(1).sum(1) for part in att.values() for a in part.values())
    zero = {**batch, **{k: {b: torch.zeros_like(t) for b, t in batch[k].items()}
                        for k in ("promoter_feats", "pcre_feats")}}
    with torch.no_grad():
        diff = model_score(m, batch) - model_score(m, zero)
    torch.testing.assert_close(total, diff, rtol=0.05, atol=0.05)


def test_perturbation_and_attention_tables(synthetic, genes):
    m, batch = _model(), _batch(genes[:5], synthetic[1])
    t = perturbation_table(m, batch)
    assert set(t.perturbation) == {"drop_pcre", "score_shift", "zero_mark_pcre", "zero_mark_promoter"}
    n = dict(zip(batch["gene_id"], batch["n_pcres"].tolist(), strict=True))
    drops = t[t.perturbation == "drop_pcre"].groupby("gene_id").size()
    assert all(drops.get(g, 0) == n[g] for g in n)
    a = regulation_attention_table(m, batch)
    assert len(a) == sum(n.values()) * 3 * 6 * 8 and a.weight.between(0, 1).all()


@pytest.mark.slow  # every model through every command: tests/test_model_matrix.py (slow suite) covers these too
@pytest.mark.parametrize("arch", ["deepchrome", "attentivechrome", "hmcrnn", "gcmerge", "chromoformer-nopcre"])
def test_baselines_train_one_epoch_on_demo(demo, tmp_path, arch):
    from chromoformer.cli import main

    d = pd.read_csv(demo / "demo_meta.csv")
    d["split"] = [i % 4 + 1 for i in range(len(d))]
    d.to_csv(tmp_path / "m.csv", index=False)
    main(["train", "-m", str(tmp_path / "m.csv"), "-d", str(demo / "demo_data"), "--fold", "1", "--epochs", "1",
          "--model", arch, "-o", str(tmp_path / "run"), "--num-workers", "0"])
    m = pd.read_csv(tmp_path / "run" / "metrics.tsv", sep="\t")
    assert len(m) == 1 and 0 <= m.val_auroc[0] <= 1
    from chromoformer.engine.loading import load_model

    assert load_model(tmp_path / "run" / "last.pt").arch == arch


def test_nopcre_ablation_ignores_pcres(synthetic, genes):
    torch.manual_seed(0)
    m = build_model("clf", arch="chromoformer-nopcre").eval()
    batch = _batch(genes[:4], synthetic[1])
    with torch.no_grad():
        a = m(**batch)
        b = m(**zero_mark(zero_mark(batch, 0, "pcre"), 5, "pcre"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_interpret_and_report_commands(synthetic, tmp_path):
    from chromoformer.cli import main

    meta, npy = synthetic
    run = tmp_path / "run"
    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "--epochs", "2", "-o", str(run),
          "--num-workers", "0"])
    genes = [g.gene_id for g in read_metadata(meta) if g.pcres][:2]
    main(["interpret", "-m", str(meta), "-d", str(npy), "-k", str(run / "best.pt"), "-o", str(run / "interpret"),
          "--genes", *genes])
    out = run / "interpret"
    pert = pd.read_csv(out / "perturbation.tsv", sep="\t")
    assert set(pert.gene_id) == set(genes)
    assert (out / f"attribution_{genes[0]}.png").stat().st_size > 10_000
    assert (out / f"attention_{genes[0]}.png").stat().st_size > 10_000
    main(["report", str(run)])
    page = (run / "report" / "index.html").read_text()
    assert "training_curves.png" in page and "roc_pr.png" in page and "interpret/attention_" in page
    assert (run / "report" / "training_curves.png").stat().st_size > 10_000
