"""Training protocols (RunSpec.protocol): a baseline's own recipe (BASELINES.md) or Chromoformer's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from chromoformer import ChromoformerConfig
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.errors import ConfigError
from chromoformer.model import build_model
from chromoformer.spec import RunSpec
from chromoformer.training import objective
from chromoformer.training.fit import fit_fold


def test_original_protocols_write_their_settings_into_the_config():
    c = RunSpec(arch="hmcrnn").config
    assert (c.lr, c.bsz, c.gamma, c.num_epoch) == (1e-3, 16, 1.0, 10)  # epochs stay the config's
    g = RunSpec(arch="gcmerge").config
    assert (g.lr, g.bsz, g.gamma) == (1e-4, 64, 1.0)
    assert RunSpec(arch="hmcrnn", protocol="chromoformer").config == ChromoformerConfig()
    assert RunSpec(arch="chromoformer").config == ChromoformerConfig()  # Chromoformer's own recipe is its original
    with pytest.raises(ConfigError, match="protocol must be one of original, chromoformer"):
        RunSpec(protocol="mine")


def test_protocol_is_saved_and_compared():
    s = RunSpec(arch="hmcrnn")
    assert RunSpec.from_dict(s.to_dict()) == s
    old = {k: v for k, v in RunSpec().to_dict().items() if k != "protocol"}  # a spec saved before protocols
    assert RunSpec.from_dict(old) == RunSpec()
    assert RunSpec().differences(RunSpec(protocol="chromoformer")) == []  # the same training
    assert "protocol" in s.differences(RunSpec(arch="hmcrnn", protocol="chromoformer"))


def test_focal_loss_known_answer():
    z = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    out = torch.stack([torch.zeros_like(z), z], 1)  # HM-CRNN's logits (0, z)
    label = torch.tensor([1, 0, 0])
    p = 1 / (1 + np.exp(-z.numpy()))
    p_t = np.where(label.numpy() == 1, p, 1 - p)
    want = np.mean(-((1 - p_t) ** 2) * np.log(p_t))
    assert objective.loss_fn(out, label, "clf", "focal").item() == pytest.approx(want, rel=1e-12)
    assert objective.loss_kind(RunSpec(arch="hmcrnn")) == "focal" and objective.summed("focal")
    assert objective.loss_kind(RunSpec(arch="hmcrnn", task="reg")) == "standard"  # MSE for the regressor
    assert objective.loss_kind(RunSpec(arch="gcmerge")) == "standard"


def test_optimizers():
    m = build_model("clf", arch="hmcrnn")
    adam = objective.make_optimizer(m, RunSpec(arch="hmcrnn"))
    assert type(adam) is torch.optim.Adam and adam.defaults["lr"] == 1e-3 and adam.defaults["weight_decay"] == 0
    assert type(objective.make_optimizer(m, RunSpec(arch="hmcrnn", protocol="chromoformer"))) is torch.optim.AdamW


def _weights(run):
    return read_checkpoint(run / "last.pt")["net"]


def test_one_epoch_is_one_adam_step_on_the_summed_focal_loss(synthetic, tmp_path):
    """10 training genes < batch 16: one epoch is one step; redone by hand from the recipe."""
    meta, npy = synthetic
    genes = read_metadata(meta)
    spec = RunSpec(arch="hmcrnn", config=dataclasses.replace(ChromoformerConfig(), num_epoch=1))
    fit_fold(spec, genes[:10], genes[10:14], NpyDirSource(npy), tmp_path / "run")
    ds = ChromoformerDataset(genes[:10], NpyDirSource(npy), spec.config, spec.binsizes, spec.task)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=10)))
    torch.manual_seed(spec.init_seed)
    m = build_model("clf", arch="hmcrnn").train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    out = m(**batch)
    log_pt = torch.log_softmax(out, 1).gather(1, batch["label"][:, None]).squeeze(1)
    (-((1 - log_pt.exp()) ** 2) * log_pt).sum().backward()
    opt.step()
    got = _weights(tmp_path / "run")
    # conv.bias feeds BatchNorm, which subtracts the batch mean: its true gradient is 0, and Adam's
    # first step (about lr * sign(g)) turns the rounding noise left in it into lr-sized moves
    checked = [k for k in m.state_dict() if k != "conv.bias"]
    for k in checked:
        torch.testing.assert_close(got[k], m.state_dict()[k], rtol=0, atol=1e-6, msg=k)
    assert len(checked) == len(got) - 1
    fit_fold(dataclasses.replace(spec, protocol="chromoformer"), genes[:10], genes[10:14], NpyDirSource(npy),
             tmp_path / "cf")
    assert not torch.allclose(_weights(tmp_path / "cf")["head.2.weight"], got["head.2.weight"])


def test_deepchrome_and_attentivechrome_recipes_in_the_config():
    d, a = RunSpec(arch="deepchrome").config, RunSpec(arch="attentivechrome", task="reg").config
    assert (d.lr, d.bsz, d.gamma) == (1e-3, 1, 1.0) and (a.lr, a.bsz, a.gamma) == (2e-4, 16, 1.0)
    m = build_model("clf", arch="deepchrome")
    sgd = objective.make_optimizer(m, RunSpec(arch="deepchrome"))
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0 and sgd.defaults["weight_decay"] == 0
    assert objective.clip_norm(RunSpec(arch="attentivechrome")) == 1.0 and objective.clip_norm(RunSpec()) is None
    assert "lr decay 1e-07" in objective.describe(RunSpec(arch="deepchrome"))
    assert "U(-0.1, 0.1) init" in objective.describe(RunSpec(arch="attentivechrome"))


def test_torch7_learning_rate_decay_known_answer():
    """Torch7's optim.sgd: step k (from 0) uses lr / (1 + k * decay)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-3)
    sched, per_step = objective.make_scheduler(opt, RunSpec(arch="deepchrome"))
    assert per_step
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3 / (1 + k * 1e-7) for k in range(4)], rel=1e-15, abs=0)
    assert not objective.make_scheduler(opt, RunSpec(arch="hmcrnn"))[1]


def test_best_epoch_rules():
    """best.pt: the earlier epoch on ties (Chromoformer, HM-CRNN, AttentiveChrome), the later (DeepDiff's ``>=``),
    or always the last (GC-MERGE evaluates its last epoch)."""
    for spec, tie, worse in ((RunSpec(), False, False), (RunSpec(arch="attentivechrome"), False, False),
                             (RunSpec(arch="deepdiff", task="diff"), True, False),
                             (RunSpec(arch="gcmerge"), True, True),
                             (RunSpec(arch="gcmerge", protocol="chromoformer"), False, False)):
        assert objective.is_best(spec, 0.5, 0.5, 3) is tie, spec.arch
        assert objective.is_best(spec, 0.4, 0.5, 3) is worse, spec.arch
        assert objective.is_best(spec, 0.6, 0.5, 3) and objective.is_best(spec, float("nan"), -np.inf, 0)


def test_attentivechrome_one_epoch_is_one_clipped_adam_step_from_uniform_init(synthetic, tmp_path):
    """10 training genes < batch 16: one epoch is one step, redone by hand from the recipe: every weight
    U(-0.1, 0.1), BCE-with-logits on the one logit, gradient norm clipped to 1, Adam 2e-4."""
    meta, npy = synthetic
    genes = read_metadata(meta)
    spec = RunSpec(arch="attentivechrome", config=dataclasses.replace(ChromoformerConfig(), num_epoch=1))
    fit_fold(spec, genes[:10], genes[10:14], NpyDirSource(npy), tmp_path / "run")
    ds = ChromoformerDataset(genes[:10], NpyDirSource(npy), spec.config, spec.binsizes, spec.task)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=10)))
    torch.manual_seed(spec.init_seed)
    m = build_model("clf", arch="attentivechrome").train()
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.1, 0.1)
    assert max(p.abs().max().item() for p in m.parameters()) <= 0.1
    opt = torch.optim.Adam(m.parameters(), lr=2e-4)
    z = m(**batch)[:, 1]
    torch.nn.functional.binary_cross_entropy_with_logits(z, batch["label"].double().to(z.dtype)).backward()
    assert torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0) > 0
    opt.step()
    got = _weights(tmp_path / "run")
    for k, v in m.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=1e-6, msg=k)
    torch.manual_seed(spec.init_seed)  # PyTorch's own init reaches past 0.1 (LSTM: 1/sqrt(32))
    assert max(p.abs().max().item() for p in build_model("clf", arch="attentivechrome").parameters()) > 0.1


def test_deepchrome_per_step_decay_survives_resume_bit_identically(synthetic, tmp_path):
    """Batch 1 SGD: 6 steps an epoch; the per-step schedule is in the checkpoint, so 1 + 1 epochs equal 2."""
    meta, npy = synthetic
    genes = read_metadata(meta)
    spec = RunSpec(arch="deepchrome", config=dataclasses.replace(ChromoformerConfig(), num_epoch=2))
    src = NpyDirSource(npy)
    fit_fold(spec, genes[:6], genes[6:10], src, tmp_path / "whole")
    fit_fold(spec.replace(num_epoch=1), genes[:6], genes[6:10], src, tmp_path / "split")
    ck = read_checkpoint(tmp_path / "split" / "last.pt")
    assert ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 / (1 + 6e-7), rel=1e-15, abs=0)
    fit_fold(spec, genes[:6], genes[6:10], src, tmp_path / "split", resume=True)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read_checkpoint(tmp_path / "whole" / "last.pt")["optimizer"]["param_groups"][0]["lr"] == pytest.approx(
        1e-3 / (1 + 12e-7), rel=1e-15, abs=0)


@pytest.mark.parametrize("arch", ["deepchrome", "hmcrnn"])
def test_a_baseline_trained_under_chromoformers_protocol_loads_and_resumes(synthetic, tmp_path, arch):
    """Its spec says protocol chromoformer: read back, the recipe of its original protocol must not be written
    into its config (it was: 'its spec and its own config.lr ... disagree', and --resume refused the run)."""
    from chromoformer.engine.loading import load_model

    meta, npy = synthetic
    genes = read_metadata(meta)
    spec = RunSpec(arch=arch, protocol="chromoformer", config=dataclasses.replace(ChromoformerConfig(), num_epoch=1))
    fit_fold(spec, genes[:8], genes[8:12], NpyDirSource(npy), tmp_path / "run")
    lm = load_model(tmp_path / "run" / "last.pt")
    assert lm.spec.protocol == "chromoformer" and lm.spec.config.lr == ChromoformerConfig().lr
    fit_fold(spec.replace(num_epoch=2), genes[:8], genes[8:12], NpyDirSource(npy), tmp_path / "run", resume=True)
    assert load_model(tmp_path / "run" / "last.pt").stored.epoch == 2
