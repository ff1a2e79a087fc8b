"""Model structure and exactness properties (docs/original.md §1)."""

from __future__ import annotations

import numpy as np
import torch

from chromoformer import ChromoformerClassifier, ChromoformerConfig, ChromoformerRegressor
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.engine.batches import to_device
from chromoformer.engine.checkpoint import save_checkpoint, spec_fields
from chromoformer.engine.runtime import Runtime
from chromoformer.inference.predict import predict_genes
from chromoformer.model.transformers import sinusoidal_encoding
from chromoformer.spec import RunSpec
from naive_reference import naive_forward, perturbed_model


def _batch(synthetic, n=12):
    meta, npy = synthetic
    ds = ChromoformerDataset(read_metadata(meta), NpyDirSource(npy), ChromoformerConfig())
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n)))


def _random_model(cls=ChromoformerClassifier, seed=0):
    return perturbed_model(cls, seed)


def _double(batch):
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {b: t.double() if t.is_floating_point() else t for b, t in v.items()}
        elif isinstance(v, torch.Tensor) and v.is_floating_point():
            out[k] = v.double()
        else:
            out[k] = v
    return out


def test_state_dict_matches_reference(reference_state_dict):
    sd = ChromoformerClassifier().state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == reference_state_dict
    assert len(sd) == 370 and sum(v.numel() for v in sd.values()) == 5_342_672


def test_parameter_counts_and_no_buffers_saved():
    assert sum(p.numel() for p in ChromoformerRegressor().parameters()) == 5_342_543
    assert len(ChromoformerClassifier().state_dict()) == 370  # pos_enc buffers are not persistent


def test_exactly_the_documented_parameters_get_no_gradient(synthetic):
    m = _random_model().train()
    m(**_batch(synthetic)).sum().backward()
    unused = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert len(unused) == 36 and sum(dict(m.named_parameters())[n].numel() for n in unused) == 1086
    assert all(n.endswith(("w_bias.weight", "gamma_f", ".ln.weight", ".ln.bias")) for n in unused)
    assert not [n for n in unused if n.startswith("regulation") and n.endswith("gamma_f")]


def test_matches_literal_reference_implementation(synthetic, device):
    """All rows, dense -1e9 masks, dummy pCREs computed: the optimised path must agree (fp64)."""
    m = _random_model().double()
    batch = _double(_batch(synthetic))
    with torch.no_grad():
        ref = naive_forward(m.state_dict(), batch)
        ours = m.to(device)(**to_device(batch, device)).cpu()
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)


def test_regressor_matches_reference(synthetic, device):
    m = _random_model(ChromoformerRegressor).double()
    batch = _double(_batch(synthetic, 6))
    with torch.no_grad():
        ref = naive_forward(m.state_dict(), batch)
        torch.testing.assert_close(m.to(device)(**to_device(batch, device)).cpu(), ref, rtol=0, atol=1e-10)


def test_predict_genes_gives_the_models_own_logits(synthetic, device, tmp_path):
    """The prediction path (dataset, loader, batches, the ensemble table) on ``device`` returns the model's own
    logits, in the genes' order, as a float64 forward of the whole batch on the CPU computes them."""
    meta, npy = synthetic
    m = _random_model()
    genes = read_metadata(meta)
    with torch.no_grad():
        want = m.double()(**_double(_batch(synthetic, len(genes)))).numpy()
    save_checkpoint({"net": m.float().state_dict(), **spec_fields(RunSpec())}, tmp_path / "m.pt")
    frame = predict_genes([tmp_path / "m.pt"], genes, NpyDirSource(npy), runtime=Runtime(device=str(device),
                                                                                         batch_size=5))
    assert list(frame.gene_id) == [g.gene_id for g in genes]
    got = frame[["logit_0", "logit_1"]].to_numpy(np.float64)
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=0, atol=1e-4)


def test_batch_size_invariance(synthetic, device):
    """In fp64, so float32 BLAS blocking noise cannot hide a real dependence on batch mates."""
    m = _random_model().double().to(device)
    batch = to_device(_double(_batch(synthetic, 12)), device)
    with torch.no_grad():
        full = m(**batch)
        parts = []
        for i in range(0, 12, 5):
            sub = {
                k: ({b: t[i : i + 5] for b, t in v.items()} if isinstance(v, dict) else v[i : i + 5])
                for k, v in batch.items()
            }
            parts.append(m(**sub))
    torch.testing.assert_close(torch.cat(parts), full, rtol=0, atol=1e-10)


def test_padding_and_dummy_content_never_change_outputs(synthetic, device):
    m = _random_model().to(device)
    batch = _batch(synthetic, 12)
    noisy = {k: ({b: t.clone() for b, t in v.items()} if isinstance(v, dict) else v) for k, v in batch.items()}
    for b, f in noisy["pcre_feats"].items():
        nb = f.shape[2]
        pos = torch.arange(nb)
        start, length = batch["pcre_bins"][b][..., :1], batch["pcre_bins"][b][..., 1:]
        pad = (pos < start) | (pos >= start + length)  # (B, i_max, nb); dummies have length 0
        f[pad] = torch.rand_like(f[pad]) * 5  # garbage in every padded bin and every dummy pCRE
    noisy["interaction_freq"] = batch["interaction_freq"].clone()
    dummy = torch.arange(8) >= batch["n_pcres"][:, None]
    noisy["interaction_freq"][dummy] = 7.0
    with torch.no_grad():
        torch.testing.assert_close(m(**to_device(noisy, device)), m(**to_device(batch, device)), rtol=0, atol=0)
    assert dummy.any()


def test_tss_only_equals_full_sequence(synthetic):
    m = _random_model()
    batch = _batch(synthetic, 4)
    emb = m.embed["100"]
    mask = torch.zeros(4, 1, 1, 400)
    with torch.no_grad():
        full = emb(batch["promoter_feats"][100], mask, tss_only=False)
        tss = emb(batch["promoter_feats"][100], mask, tss_only=True)
    torch.testing.assert_close(full[:, 200], tss, rtol=0, atol=1e-5)


def test_attention_maps_are_exported_without_changing_outputs(synthetic):
    m = _random_model().double()
    batch = _double(_batch(synthetic, 4))
    att: dict = {}
    with torch.no_grad():
        plain = m(**batch)
        traced = m(**batch, attentions=att)
    torch.testing.assert_close(traced, plain, rtol=0, atol=1e-10)
    reg = att[2000]["regulation"]
    assert len(reg) == 6 and reg[0].shape == (4, 8, 9, 9)
    torch.testing.assert_close(reg[0].sum(-1), torch.ones(4, 8, 9, dtype=torch.float64))
    dummy = torch.arange(1, 9) > batch["n_pcres"][:, None]
    assert (reg[-1][:, :, 0, 1:][dummy[:, None].expand(-1, 8, -1)] == 0).all()


def test_positional_encoding_formula():
    pe = sinusoidal_encoding(400, 128)
    assert pe.shape == (400, 128)
    assert torch.allclose(pe[:, 0], torch.sin(torch.arange(400.0)))
    assert torch.allclose(pe[:, 1], torch.cos(torch.arange(400.0)))
    assert torch.allclose(pe[7, 10], torch.sin(torch.tensor(7.0) * 10000 ** (-10 / 128)))


def test_original_seed_gives_deterministic_init():
    torch.manual_seed(42)
    a = ChromoformerClassifier().state_dict()
    torch.manual_seed(42)
    b = ChromoformerClassifier().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runs_on_cpu_in_half_precision_autocast(synthetic):
    m = _random_model()
    batch = _batch(synthetic, 4)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(**batch)
    assert out.shape == (4, 2) and torch.isfinite(out).all()


def test_factored_pairwise_attention_equals_plain():
    from chromoformer.model.attention import PairwiseMultiHeadAttention

    torch.manual_seed(3)
    att = PairwiseMultiHeadAttention(128, 128, 2).double()
    x_p, feats = torch.randn(5, 3, 128, dtype=torch.float64), torch.rand(5, 40, 7, dtype=torch.float64)
    w_in, pos = torch.randn(128, 7, dtype=torch.float64), torch.randn(40, 128, dtype=torch.float64)
    mask = torch.zeros(5, 1, 1, 40, dtype=torch.float64)
    mask[:, ..., 30:] = float("-inf")
    plain, wp = att(x_p, feats @ w_in.T + pos, mask, need_weights=True)
    fact, wf = att.forward_factored(x_p, feats, w_in, pos, mask, need_weights=True)
    torch.testing.assert_close(fact, plain, rtol=0, atol=1e-12)
    torch.testing.assert_close(wf, wp, rtol=0, atol=1e-12)
    assert (wf[..., 30:] == 0).all()
