"""Config parsing and checkpoint I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from chromoformer import ChromoformerClassifier
from chromoformer.config import ChromoformerConfig, ConfigError, load_config
from chromoformer.engine.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from chromoformer.engine.loading import canonical_key, load_model


def test_packaged_default_matches_dataclass_defaults():
    cfg = load_config()
    assert cfg == ChromoformerConfig()
    assert (cfg.d_emb, cfg.regulation.d_model, cfg.d_head, cfg.lr, cfg.gamma) == (128, 256, 128, 3e-5, 0.87)


def _write(tmp_path, d):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


@pytest.mark.parametrize(
    "mutate,msg",
    [
        (lambda d: d.update(dropout=0.1), "unknown config key(s) dropout"),
        (lambda d: d["regulation"].update(d_k=4), "unknown config key(s) regulation.d_k"),
        (lambda d: d.pop("lr"), "missing config key(s) lr"),
        (lambda d: d.update(bsz="64"), "bsz must be an integer"),
        (lambda d: d["pairwise_interaction"].update(d_model=64), "must equal embed.d_model"),
        (lambda d: d.update(w_prom=50000), "exceeds w_max"),
    ],
)
def test_bad_configs_name_file_and_key(tmp_path, mutate, msg):
    d = ChromoformerConfig().to_dict()
    mutate(d)
    p = _write(tmp_path, d)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and msg in str(e.value)


def test_config_is_frozen_and_float_lr_accepts_int(tmp_path):
    d = ChromoformerConfig().to_dict()
    d["lr"] = 1
    cfg = load_config(_write(tmp_path, d))
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    with pytest.raises(AttributeError):
        cfg.lr = 2.0  # type: ignore[misc]


def test_atomic_save_leaves_no_partial_file(tmp_path):
    p = tmp_path / "m.pt"
    save_checkpoint({"net": {"w": torch.ones(2)}}, p)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"net": {"w": torch.zeros(2)}, "x": Boom()}, p)
    assert torch.equal(read_checkpoint(p)["net"]["w"], torch.ones(2))  # old file intact
    assert [f.name for f in tmp_path.iterdir()] == ["m.pt"]


def test_numpy_entries_load_under_weights_only(tmp_path):
    p = tmp_path / "m.pt"
    torch.save(
        {
            "net": {"a": torch.zeros(1)},
            "val_score": np.zeros(3, np.float32),
            "val_label": np.arange(3),
            "f": np.float64(1.5),
        },
        p,
    )
    ck = read_checkpoint(p)
    assert ck["val_score"].dtype == np.float32 and ck["f"] == 1.5


def test_bare_state_dict_and_head_mismatch(tmp_path):
    torch.manual_seed(0)
    sd = ChromoformerClassifier().state_dict()
    torch.save(sd, tmp_path / "bare.pt")
    assert load_model(tmp_path / "bare.pt").task == "clf"
    sd["fc_head.2.weight"] = torch.zeros(3, 128)
    torch.save({"net": sd}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="expected 2 \\(clf\\) or 1 \\(reg\\)"):
        load_model(tmp_path / "bad.pt")


def test_loaded_model_keeps_weights_once(tmp_path):
    """The model holds the weights; the kept checkpoint dict drops them and the optimizer state (memory)."""
    torch.manual_seed(0)
    net = ChromoformerClassifier()
    opt = torch.optim.AdamW(net.parameters())
    sd = net.state_dict()
    torch.save({"net": sd, "optimizer": opt.state_dict(), "epoch": 3, "val_gene_ids": ["g1"]}, tmp_path / "m.pt")
    lm = load_model(tmp_path / "m.pt")
    assert "net" not in lm.checkpoint and "optimizer" not in lm.checkpoint
    assert lm.checkpoint["epoch"] == 3 and lm.checkpoint["val_gene_ids"] == ["g1"]
    assert all(torch.equal(v, sd[k]) for k, v in lm.model.state_dict().items())
    assert "optimizer" in read_checkpoint(tmp_path / "m.pt")  # the file itself is untouched


def test_missing_tensor_is_a_clear_error(tmp_path):
    sd = ChromoformerClassifier().state_dict()
    del sd["regulation.100.transformer.layers.0.self_att.w_bias.weight"]
    torch.save({"net": sd}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_model(tmp_path / "m.pt")


def test_canonical_key_examples():
    assert canonical_key("embed2000.lin_proj.weight") == "embed.2000.lin_proj.weight"
    assert canonical_key("pw_int500.lin_proj_pcre.weight") == "pairwise_interaction.500.lin_proj_pcre.weight"
    assert canonical_key("reg100.transformer.layers.0.ff.l1.bias") == "regulation.100.transformer.layers.0.ff.l1.bias"
    assert canonical_key("embed100_b.lin_proj_c.weight") == "pairwise_interaction.100.lin_proj_pcre.weight"
    key = "transformer500.layers.1.self_att.gamma_f"
    assert canonical_key(key) == "regulation.500.transformer.layers.1.self_att.gamma_f"
    assert canonical_key("fc_head.0.weight") == "fc_head.0.weight"


def test_config_splits_into_model_and_training_parts_with_the_same_keys():
    """ModelConfig and TrainConfig partition the YAML's keys; the model sees only its part, and the spec compares
    ensembles on the model part alone."""
    import dataclasses

    from chromoformer.config import MODEL_KEYS, TRAIN_KEYS, ChromoformerConfig, ModelConfig
    from chromoformer.spec import TRAINING_ONLY

    cfg = ChromoformerConfig.from_dict({**ChromoformerConfig().to_dict(), "lr": 1e-3})
    assert set(MODEL_KEYS).isdisjoint(TRAIN_KEYS)
    assert set(MODEL_KEYS) | set(TRAIN_KEYS) == {f.name for f in dataclasses.fields(ChromoformerConfig)}
    assert TRAINING_ONLY == TRAIN_KEYS and cfg.train.lr == 1e-3 and not hasattr(cfg.model, "lr")
    model = ChromoformerClassifier(cfg)
    assert isinstance(model.config, ModelConfig) and model.config == ChromoformerConfig().model
