"""The published-format checkpoint on the real demo genes (../shared/reference-demo)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer.data import ChromoformerDataset, NpyDirSource, build_store_from_npy, read_metadata
from chromoformer.engine.checkpoint import read_checkpoint, save_checkpoint
from chromoformer.engine.loading import canonical_state_dict, load_model
from chromoformer.engine.runtime import Runtime
from chromoformer.inference.predict import predict
from conftest import ORIGINAL_SITE, ROOT

CKPT = "scrambled-clf-fold1.pt"


@pytest.fixture(scope="module")
def demo_pred(demo):
    return predict(demo / "demo_meta.csv", demo / "demo_data", [demo / CKPT])


def test_strict_load_and_detected_task(demo):
    m = load_model(demo / CKPT)
    assert m.task == "clf" and m.binsizes == (2000, 500, 100)
    assert not m.model.training


def test_softmax_matches_checkpoint_val_score(demo, demo_pred):
    """The checkpoint stores the original's softmax P(class 1) for exactly these 100 genes."""
    ck = read_checkpoint(demo / CKPT)
    meta = pd.read_csv(demo / "demo_meta.csv")
    assert list(demo_pred.gene_id) == list(meta.gene_id)
    assert list(demo_pred.columns) == ["gene_id", "logit_0", "logit_1", "prediction"]
    np.testing.assert_allclose(demo_pred.prediction, ck["val_score"], rtol=0, atol=2e-6)
    np.testing.assert_array_equal(meta.label, ck["val_label"])
    logits = torch.tensor(demo_pred[["logit_0", "logit_1"]].values)
    np.testing.assert_allclose(torch.softmax(logits, 1)[:, 1], demo_pred.prediction, atol=1e-6)


def test_sigmoid_probability_option(demo, demo_pred):
    sig = predict(demo / "demo_meta.csv", demo / "demo_data", [demo / CKPT], probability="sigmoid")
    np.testing.assert_allclose(sig.prediction, torch.sigmoid(torch.tensor(demo_pred.logit_1.values)), atol=1e-6)


def test_fold_ensemble_of_identical_models_is_identity(demo, demo_pred):
    ens = predict(demo / "demo_meta.csv", demo / "demo_data", [demo / CKPT, demo / CKPT])
    np.testing.assert_allclose(ens[["logit_0", "logit_1"]], demo_pred[["logit_0", "logit_1"]], atol=1e-6)


def test_store_and_npy_paths_agree(demo, demo_pred, tmp_path):
    store = build_store_from_npy(demo / "demo_data", tmp_path / "store")
    via_store = predict(demo / "demo_meta.csv", store.path, [demo / CKPT])
    np.testing.assert_allclose(via_store[["logit_0", "logit_1"]], demo_pred[["logit_0", "logit_1"]], atol=1e-6)


def test_batch_size_invariance_on_real_data(demo, demo_pred):
    small = predict(demo / "demo_meta.csv", demo / "demo_data", [demo / CKPT], runtime=Runtime(batch_size=7))
    np.testing.assert_allclose(small[["logit_0", "logit_1"]], demo_pred[["logit_0", "logit_1"]], atol=1e-5)


def test_minus_strand_promoter_is_reversed(demo):
    from chromoformer import ChromoformerConfig

    genes = read_metadata(demo / "demo_meta.csv")
    g = next(g for g in genes if g.strand == "-")
    plus = type(g)(**{**g.__dict__, "strand": "+"})
    src, cfg = NpyDirSource(demo / "demo_data"), ChromoformerConfig()
    a, b = ChromoformerDataset([g], src, cfg)[0], ChromoformerDataset([plus], src, cfg)[0]
    for bs in (2000, 500, 100):
        assert torch.equal(a["promoter_feats"][bs], b["promoter_feats"][bs].flip(0))
        assert torch.equal(a["pcre_feats"][bs], b["pcre_feats"][bs])  # pCREs are never flipped


@pytest.mark.parametrize("scheme", ["v1.0.0", "research", "dataparallel"])
def test_legacy_key_names_load(demo, demo_pred, tmp_path, scheme):
    sd = read_checkpoint(demo / CKPT)["net"]
    renamed = {}
    for k, v in sd.items():
        if scheme == "v1.0.0":
            k = (
                k.replace("embed.", "embed", 1)
                .replace("pairwise_interaction.", "pw_int", 1)
                .replace("regulation.", "reg", 1)
            )
        elif scheme == "research":
            parts = k.split(".")
            if parts[0] == "embed":
                k = f"embed{parts[1]}_a." + ".".join(parts[2:])
            elif parts[0] == "pairwise_interaction":
                k = f"embed{parts[1]}_b." + ".".join(parts[2:]).replace("lin_proj_pcre", "lin_proj_c")
            elif parts[0] == "regulation":
                k = f"transformer{parts[1]}." + ".".join(parts[3:])
        else:
            k = "module." + k
        renamed[k] = v
    assert canonical_state_dict(renamed).keys() == sd.keys()
    save_checkpoint({"net": renamed}, tmp_path / "legacy.pt")
    pred = predict(demo / "demo_meta.csv", demo / "demo_data", [tmp_path / "legacy.pt"])
    np.testing.assert_allclose(pred[["logit_0", "logit_1"]], demo_pred[["logit_0", "logit_1"]], atol=1e-6)


@pytest.fixture(scope="module")
def oracle(demo, tmp_path_factory):
    if not (ORIGINAL_SITE / "chromoformer" / "net.py").is_file():
        pytest.skip(f"original chromoformer 1.1.3 not installed at {ORIGINAL_SITE} (.ci/run installs it)")
    out = tmp_path_factory.mktemp("oracle") / "oracle.npz"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "reference" / "original_oracle.py"),
            "--ref-site",
            str(ORIGINAL_SITE),
            "--meta",
            str(demo / "demo_meta.csv"),
            "--npy-dir",
            str(demo / "demo_data"),
            "--checkpoint",
            str(demo / CKPT),
            "--out",
            str(out),
        ],
        check=True,
        cwd=out.parent,
    )
    return np.load(out)


def test_logits_equal_original_implementation(oracle, demo_pred):
    assert list(oracle["gene_id"]) == list(demo_pred.gene_id)
    np.testing.assert_allclose(demo_pred[["logit_0", "logit_1"]].values, oracle["out"], rtol=0, atol=5e-6)


def test_binned_features_bit_identical_to_original(oracle, demo):
    from chromoformer import ChromoformerConfig

    ds = ChromoformerDataset(
        read_metadata(demo / "demo_meta.csv"), NpyDirSource(demo / "demo_data"), ChromoformerConfig()
    )
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=16)))
    for b in (2000, 500, 100):
        np.testing.assert_array_equal(batch["promoter_feats"][b].numpy(), oracle[f"promoter_{b}"][:, 0])
        np.testing.assert_array_equal(batch["pcre_feats"][b].numpy(), oracle[f"pcre_{b}"])
