"""DeepChrome, AttentiveChrome, HM-CRNN and GC-MERGE (BASELINES.md §1-2, §3b): parameter counts at the
originals' mark counts and at 7, a literal float64 re-computation from the layer descriptions, and the
properties every model here keeps (batch-size invariance, padding and dummy pCREs never read, strand flip)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from chromoformer import ChromoformerConfig
from chromoformer.config import model_config
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.model import GCMERGE, HMCRNN, AttentiveChrome, DeepChrome, build_model
from chromoformer.model.deepdiff import DeepDiff
from literal import lstm_direction


def _batch(synthetic, n=12):
    meta, npy = synthetic
    ds = ChromoformerDataset(read_metadata(meta), NpyDirSource(npy), ChromoformerConfig())
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n)))


def _double(batch):
    return {k: ({b: t.double() if t.is_floating_point() else t for b, t in v.items()} if isinstance(v, dict)
                else v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in batch.items()}


def _perturbed(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        for name, buf in model.named_buffers():  # BatchNorm running statistics matter in eval
            if name.endswith("running_mean"):
                buf.copy_(torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
    return model.eval()


def _n(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_equal_baselines_md():
    for task in ("clf", "reg"):
        m = build_model(task, arch="hmcrnn")
        assert _n(m) == 24_818  # HM branch 22,193 + head 80 -> 32 -> 1
        assert _n(m) - _n(m.head) == 22_193
        assert _n(m.conv) + _n(m.bn) == 1_040 and _n(m.lstm) == 19_840 and _n(m.attention) == 1_313
    assert _n(build_model("clf", arch="gcmerge")) == 267_266 and _n(build_model("reg", arch="gcmerge")) == 267_009
    assert _n(GCMERGE(6, 2)) == 266_754 and _n(GCMERGE(6, 1)) == 266_497  # the original's 6 features
    assert _n(GCMERGE(5, 2)) == 266_242  # its older 5-feature model


def test_parameter_counts_at_the_originals_marks_equal_baselines_md():
    """5 marks (DeepChrome, AttentiveChrome, DeepDiff's setting) and 7 (Chromoformer's), BASELINES.md §3, §3b."""
    assert _n(DeepChrome(5, 2)) == 644_177 and _n(DeepChrome(7, 2)) == 645_177
    for n_out in (2, 1):  # one-logit head for both tasks (a classifier's logits are (0, z))
        assert _n(AttentiveChrome(5, n_out)) == 55_681 and _n(AttentiveChrome(7, n_out)) == 73_729
    m = AttentiveChrome(7)
    assert [_n(e) for e in m.bin_encoders] == [9_024] * 7 and _n(m.mark_encoder) == 10_528 and _n(m.head) == 33
    assert _n(DeepDiff(5)) == 212_163 and _n(DeepDiff(7)) == 284_355
    for task, arch, want in (("clf", "deepchrome", 644_177), ("clf", "attentivechrome", 55_681),
                             ("reg", "attentivechrome", 55_681), ("clf", "gcmerge", 266_242)):
        cfg = dataclasses.replace(ChromoformerConfig(), n_feats=5)
        assert _n(build_model(task, cfg, arch=arch)) == want, (task, arch)
    assert _n(build_model("clf", dataclasses.replace(ChromoformerConfig(), n_feats=6), arch="gcmerge")) == 266_754


# ---- literal re-computations, float64, loops over the layer descriptions ----

def _hmcrnn_literal(sd, prom100):
    """prom100: (400, F) ln(1 + mean depth) at 100 bp -> HM-CRNN's output z (one gene)."""
    depth = np.expm1(prom100)
    x = np.log1p(np.array([depth[10 * k:10 * k + 10].mean(0) for k in range(40)])).T  # (F, 40)
    w, bias = sd["conv.weight"], sd["conv.bias"]  # (20, 1, F, 7)
    conv = np.array([[np.sum(w[c, 0] * x[:, t:t + 7]) + bias[c] for t in range(34)] for c in range(20)])
    bn = ((conv - sd["bn.running_mean"][:, None]) / np.sqrt(sd["bn.running_var"][:, None] + 1e-5)
          * sd["bn.weight"][:, None] + sd["bn.bias"][:, None])
    r = np.maximum(bn, 0)
    padded = np.concatenate([np.full((20, 1), -np.inf), r, np.full((20, 1), -np.inf)], 1)
    pooled = np.array([padded[:, 3 * k:3 * k + 3].max(1) for k in range(12)])  # (12, 20)
    fwd = lstm_direction(pooled, sd["lstm.weight_ih_l0"], sd["lstm.weight_hh_l0"], sd["lstm.bias_ih_l0"],
                          sd["lstm.bias_hh_l0"])
    bwd = lstm_direction(pooled[::-1], sd["lstm.weight_ih_l0_reverse"], sd["lstm.weight_hh_l0_reverse"],
                          sd["lstm.bias_ih_l0_reverse"], sd["lstm.bias_hh_l0_reverse"])[::-1]
    h = np.concatenate([fwd, bwd], 1)  # (12, 80)
    e = np.array([sd["attention.score.weight"][0] @ np.tanh(sd["attention.proj.weight"] @ ht
                                                          + sd["attention.proj.bias"]) + sd["attention.score.bias"][0]
                  for ht in h])
    a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    context = (a[:, None] * h).sum(0)
    hid = np.maximum(sd["head.0.weight"] @ context + sd["head.0.bias"], 0)
    return sd["head.2.weight"] @ hid + sd["head.2.bias"]


def _np(model):
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def test_hmcrnn_equals_literal_recomputation(synthetic):
    batch = _double(_batch(synthetic, 5))
    for task in ("clf", "reg"):
        m = _perturbed(build_model(task, arch="hmcrnn")).double()
        with torch.no_grad():
            out = m(**batch).numpy()
        z = np.array([_hmcrnn_literal(_np(m), batch["promoter_feats"][100][i].numpy())[0] for i in range(5)])
        np.testing.assert_allclose(out[:, -1], z, rtol=0, atol=1e-10)
        if task == "clf":
            assert (out[:, 0] == 0).all()  # logits (0, z): softmax gives sigmoid(z) for class 1


def _gcmerge_literal(sd, prom100, pcre100, spans, n):
    """One gene's star graph, node by node: promoter (400, F), pCREs (i_max, 400, F), spans (i_max, 2)."""
    nodes = [np.log1p(np.expm1(prom100[150:250]).mean(0))]  # central 10 kb
    for j in range(n):
        s, length = spans[j]
        nodes.append(np.log1p(np.expm1(pcre100[j, s:s + length]).mean(0)))
    nbrs = {0: list(range(1, n + 1)), **{j: [0] for j in range(1, n + 1)}}
    h = nodes
    for layer in ("conv1", "conv2"):
        w, b = sd[f"{layer}.lin.weight"], sd[f"{layer}.lin.bias"]
        h = [np.maximum(w @ np.concatenate([h[i], np.mean([h[j] for j in nbrs[i]], 0) if nbrs[i]
                                            else np.zeros_like(h[i])]) + b, 0) for i in range(len(h))]
    x = h[0]
    for k in (0, 2):
        x = np.maximum(sd[f"head.{k}.weight"] @ x + sd[f"head.{k}.bias"], 0)
    return sd["head.4.weight"] @ x + sd["head.4.bias"]


def test_gcmerge_equals_literal_recomputation(synthetic):
    batch = _double(_batch(synthetic, 8))
    assert (batch["n_pcres"] == 0).any() and (batch["n_pcres"] > 1).any()  # both kinds of star are checked
    for task in ("clf", "reg"):
        m = _perturbed(build_model(task, arch="gcmerge")).double()
        with torch.no_grad():
            out = m(**batch).numpy()
        sd = _np(m)
        want = np.array([_gcmerge_literal(sd, batch["promoter_feats"][100][i].numpy(),
                                          batch["pcre_feats"][100][i].numpy(), batch["pcre_bins"][100][i].numpy(),
                                          int(batch["n_pcres"][i])) for i in range(8)])
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-10)


def _attentivechrome_literal(sd, prom100, tied=False):
    """prom100: (400, F) at 100 bp -> AttentiveChrome's z (one gene): each mark k through ITS OWN bin-level
    LSTM and context vector (``tied``: mark 0's for every mark, the shared-encoder model it must not be)."""
    x = prom100[150:250]  # the central 100 bins, TSS +- 5 kb

    def encode(seq, p):
        w = [sd[f"{p}.lstm.{n}"] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
        wr = [sd[f"{p}.lstm.{n}_reverse"] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
        h = np.concatenate([lstm_direction(seq, *w), lstm_direction(seq[::-1], *wr)[::-1]], 1)
        e = h @ sd[f"{p}.attention.v"]
        a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
        return (a[:, None] * h).sum(0)

    marks = np.array([encode(x[:, k:k + 1], f"bin_encoders.{0 if tied else k}") for k in range(x.shape[1])])
    return sd["head.weight"] @ encode(marks, "mark_encoder") + sd["head.bias"]


def test_attentivechrome_equals_literal_recomputation_with_untied_per_mark_encoders(synthetic):
    batch = _double(_batch(synthetic, 4))
    for task in ("clf", "reg"):
        m = _perturbed(build_model(task, arch="attentivechrome")).double()
        with torch.no_grad():
            out = m(**batch).numpy()
        sd = _np(m)
        prom = [batch["promoter_feats"][100][i].numpy() for i in range(4)]
        z = np.array([_attentivechrome_literal(sd, p)[0] for p in prom])
        np.testing.assert_allclose(out[:, -1], z, rtol=0, atol=1e-10)
        tied = np.array([_attentivechrome_literal(sd, p, tied=True)[0] for p in prom])
        assert np.abs(out[:, -1] - tied).max() > 1e-3  # a shared encoder would be caught
        if task == "clf":
            assert (out[:, 0] == 0).all()  # logits (0, z): cross-entropy on them is BCE-with-logits on z
            assert m.last_attention["bin"].shape == (4, 7, 100) and m.last_attention["mark"].shape == (4, 7)


def test_deepchrome_equals_literal_recomputation(synthetic):
    batch = _double(_batch(synthetic, 3))
    m = _perturbed(build_model("clf", arch="deepchrome")).double()
    with torch.no_grad():
        out = m(**batch).numpy()
    sd = _np(m)
    for i in range(3):
        x = batch["promoter_feats"][100][i].numpy()[150:250].T  # (F, 100)
        w, b = sd["conv.0.weight"], sd["conv.0.bias"]  # (50, F, 10)
        conv = np.maximum(np.array([[np.sum(w[c] * x[:, t:t + 10]) + b[c] for t in range(91)] for c in range(50)]), 0)
        pooled = np.array([[conv[c, 5 * k:5 * k + 5].max() for k in range(18)] for c in range(50)]).reshape(-1)
        h = np.maximum(sd["head.1.weight"] @ pooled + sd["head.1.bias"], 0)
        h = np.maximum(sd["head.3.weight"] @ h + sd["head.3.bias"], 0)
        np.testing.assert_allclose(out[i], sd["head.5.weight"] @ h + sd["head.5.bias"], rtol=0, atol=1e-10)


# ---- properties ----

@pytest.mark.parametrize("arch", ["deepchrome", "attentivechrome", "hmcrnn", "gcmerge"])
def test_batch_size_invariance(synthetic, arch):
    m = _perturbed(build_model("clf", arch=arch)).double()
    batch = _double(_batch(synthetic, 12))
    with torch.no_grad():
        full = m(**batch)
        parts = [m(**{k: ({b: t[i:i + 5] for b, t in v.items()} if isinstance(v, dict) else v[i:i + 5])
                      for k, v in batch.items()}) for i in range(0, 12, 5)]
    torch.testing.assert_close(torch.cat(parts), full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", ["deepchrome", "attentivechrome", "hmcrnn", "gcmerge"])
def test_padding_and_dummy_pcres_never_change_outputs(synthetic, arch):
    m = _perturbed(build_model("reg", arch=arch))
    batch = _batch(synthetic, 12)
    noisy = {k: ({b: t.clone() for b, t in v.items()} if isinstance(v, dict) else v) for k, v in batch.items()}
    for b, f in noisy["pcre_feats"].items():
        pos = torch.arange(f.shape[2])
        start, length = batch["pcre_bins"][b][..., :1], batch["pcre_bins"][b][..., 1:]
        pad = (pos < start) | (pos >= start + length)
        pad |= (torch.arange(f.shape[1]) >= batch["n_pcres"][:, None])[..., None]
        f[pad] = torch.rand_like(f[pad]) * 5
    noisy["interaction_freq"] = torch.rand_like(batch["interaction_freq"]) * 7  # unused by both
    with torch.no_grad():
        torch.testing.assert_close(m(**noisy), m(**batch), rtol=0, atol=0)


def _two_genes(tmp_path):
    """G1 on '+' and G2 on '-', G2's promoter reads the mirror image of G1's; one shared pCRE."""
    npy = tmp_path / "npy"
    npy.mkdir()
    rng = np.random.default_rng(3)
    x = rng.gamma(1.0, 2.0, (7, 40_000)).astype(np.float16)
    np.save(npy / "chr1:30000-70000.npy", x)
    np.save(npy / "chr1:130000-170000.npy", x[:, ::-1].copy())
    np.save(npy / "chr1:300000-301234.npy", rng.gamma(1.0, 3.0, (7, 1234)).astype(np.float16))
    meta = tmp_path / "meta.csv"
    meta.write_text("gene_id,label,chrom,start,end,strand,split,neighbors,scores\n"
                    "G1,1,chr1,50000,50001,+,1,chr1:300000-301234,2.5\n"
                    "G2,1,chr1,150000,150001,-,1,chr1:300000-301234,2.5\n")
    return meta, npy


@pytest.mark.parametrize("arch", ["deepchrome", "attentivechrome", "hmcrnn", "gcmerge"])
def test_strand_flip(tmp_path, arch):
    """A '-' gene whose reads mirror a '+' gene's is the same gene to the model (each scored alone, so
    that float32 reduction order, which may differ between rows of one batch, is the same)."""
    meta, npy = _two_genes(tmp_path)
    ds = ChromoformerDataset(read_metadata(meta), NpyDirSource(npy), ChromoformerConfig())
    genes = list(torch.utils.data.DataLoader(ds, batch_size=1))
    m = _perturbed(build_model("reg", arch=arch))
    with torch.no_grad():
        out = [m(**g).item() for g in genes]
        flipped = {k: ({b: t.flip(1) for b, t in v.items()} if k == "promoter_feats" else v)
                   for k, v in genes[0].items()}
        mirrored = m(**flipped).item()
    assert out[0] == out[1]
    if arch != "gcmerge":  # orientation matters to it, so the test could fail
        assert mirrored != out[0]
    else:  # GC-MERGE's promoter node is a mean over TSS +- 5 kb: blind to orientation by design
        assert mirrored == pytest.approx(out[0], rel=1e-4)  # float32 sums in reverse order


def test_window_too_small_is_refused():
    cfg = model_config(ChromoformerConfig())
    m = HMCRNN(cfg.n_feats)
    with pytest.raises(ValueError, match="1000 bp bins over 40000 bp"):
        m(promoter_feats={300: torch.zeros(1, 133, 7)})


def test_attributions_of_inputs_a_model_never_reads_are_zero(synthetic):
    from chromoformer.inference.attribution import gradient_attributions

    batch = _batch(synthetic, 4)
    attr = gradient_attributions(_perturbed(build_model("clf", arch="hmcrnn")), batch)
    assert all(not t.any() for t in attr["pcre"].values())  # HM-CRNN reads no pCRE
    assert not attr["promoter"][2000].any() and attr["promoter"][100].abs().sum() > 0


def test_gcmerge_without_any_pcre_is_refused(synthetic, tmp_path):
    from chromoformer.data import NpyDirSource
    from chromoformer.errors import UsageError
    from chromoformer.spec import RunSpec
    from chromoformer.training.fit import fit_fold

    genes = [dataclasses.replace(g, pcres=(), scores=()) for g in read_metadata(synthetic[0])]
    with pytest.raises(UsageError, match=r"gcmerge is a graph .* none of the 12 training genes has a pCRE"):
        fit_fold(RunSpec(arch="gcmerge"), genes[:12], genes[12:], NpyDirSource(synthetic[1]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_compare_runs_the_originals_own_mark_sets(synthetic, tmp_path, capsys):
    """``compare --marks deepchrome``: every model reads that original's marks, picked by name from the npy
    directory's 7 rows; the parameter counts are BASELINES.md's at 5 marks (GC-MERGE's 6 through build_model in
    test_parameter_counts_at_the_originals_marks_equal_baselines_md, on the same code path)."""
    import pandas as pd

    from chromoformer.cli import main as cli
    from chromoformer.config import MARK_SETS
    from chromoformer.engine.checkpoint import read_checkpoint

    meta, npy = map(str, synthetic)
    for marks, models, want in (("deepchrome", ["deepchrome", "attentivechrome"], [644_177, 55_681]),):
        out = tmp_path / marks
        cli(["compare", "-m", meta, "-d", npy, "-o", str(out), "--models", *models, "--folds", "1", "--epochs", "1",
             "--marks", marks])
        t = pd.read_csv(out / "comparison.tsv", sep="\t")
        assert t.params.tolist() == want
        ck = read_checkpoint(out / models[0] / "fold1" / "last.pt")
        assert tuple(ck["spec"]["marks"]) == MARK_SETS[marks]
        assert ck["spec"]["config"]["n_feats"] == len(MARK_SETS[marks])
    with pytest.raises(SystemExit) as e:
        cli(["compare", "-m", meta, "-d", npy, "-o", str(tmp_path / "bad"), "--marks", "H3K4me3", "H3K79me2"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--marks: H3K79me2 not in" in err[0], err


def test_an_attentivechrome_checkpoint_with_the_old_shared_encoder_is_refused_in_one_line(synthetic, tmp_path):
    from torch import nn

    from chromoformer.engine.checkpoint import read_checkpoint
    from chromoformer.engine.loading import load_model
    from chromoformer.errors import CheckpointError
    from chromoformer.spec import RunSpec
    from chromoformer.training.fit import fit_fold

    genes = read_metadata(synthetic[0])
    spec = RunSpec(arch="attentivechrome", config=dataclasses.replace(ChromoformerConfig(), num_epoch=1))
    fit_fold(spec, genes[:6], genes[6:10], NpyDirSource(synthetic[1]), tmp_path / "run")
    ck = read_checkpoint(tmp_path / "run" / "last.pt")
    old = nn.ModuleDict({"bin_rnn": nn.LSTM(1, 32, bidirectional=True), "bin_att": nn.Linear(64, 1, bias=False),
                         "mark_rnn": nn.LSTM(64, 16, bidirectional=True), "head": nn.Linear(32, 2)})
    ck["net"] = {k.replace("bin_att.", "bin_att.score."): v for k, v in old.state_dict().items()}
    assert sum(v.numel() for v in ck["net"].values()) < 19_618  # the old model's layout (less its mark attention)
    torch.save(ck, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"old.pt: an AttentiveChrome checkpoint from before 2026-12-07.*"
                                              r"retrain it"):
        load_model(tmp_path / "old.pt")
