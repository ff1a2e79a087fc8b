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
