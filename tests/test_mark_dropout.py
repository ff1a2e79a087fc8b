"""Mark dropout: a model trained to predict with any marks absent, and absent marks that are
never zeros pretending to be data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from chromoformer.cli import main
from chromoformer.config import MARKS, ChromoformerConfig, TransformerConfig, load_config
from chromoformer.errors import ConfigError, UsageError
from chromoformer.model import build_model

TINY = ChromoformerConfig(embed=TransformerConfig(1, 2, 16, 16), pairwise_interaction=TransformerConfig(1, 2, 16, 16),
                          regulation=TransformerConfig(1, 2, 16, 16), d_head=8)


def test_config_key_is_optional_and_checked(tmp_path):
    assert load_config().mark_dropout == 0.0  # the original's YAML has no such key
    d = load_config().to_dict()
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="mark_dropout must be in"):
            ChromoformerConfig.from_dict({**d, "mark_dropout": bad})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**d, "mark_dropout": 0.2}))
    assert load_config(tmp_path / "c.yaml").mark_dropout == 0.2
    with pytest.raises(UsageError, match="deepchrome has no input for absent marks"):
        build_model("clf", dataclasses.replace(TINY, mark_dropout=0.2), arch="deepchrome")


def _batch(synthetic, n=3):
    from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata

    meta, npy = synthetic
    ds = ChromoformerDataset(read_metadata(meta), NpyDirSource(npy), TINY)
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n)))


def test_absent_parameter_changes_no_other_weight_and_replaces_the_mark(synthetic):
    torch.manual_seed(42)
    plain = build_model("clf", TINY)
    torch.manual_seed(42)
    drop = build_model("clf", dataclasses.replace(TINY, mark_dropout=0.2))
    a, b = plain.state_dict(), drop.state_dict()
    assert set(b) - set(a) == {"absent"} and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(b["absent"], torch.full((7,), -1.0))
    drop.eval()
    with torch.no_grad():
        drop.absent.copy_(torch.arange(7.0) - 3)
        batch = _batch(synthetic)
        everything = torch.ones(3, 7, dtype=torch.bool)
        assert torch.equal(drop(**batch, present=everything), drop(**batch))
        present = everything.clone()
        present[1, 4] = False  # gene 1 without H3K36me3
        by_hand = {k: ({bb: x.clone() for bb, x in v.items()} if isinstance(v, dict) else v) for k, v in batch.items()}
        for bb in by_hand["promoter_feats"]:
            by_hand["promoter_feats"][bb][1, :, 4] = 1.0  # absent[4]
            by_hand["pcre_feats"][bb][1, :, :, 4] = 1.0
        got, want = drop(**batch, present=present), drop(**by_hand)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        assert not torch.allclose(got[1], drop(**batch)[1])
        torch.testing.assert_close(got[[0, 2]], drop(**batch)[[0, 2]], rtol=0, atol=1e-6)  # other genes untouched
        with pytest.raises(ValueError, match="trained without mark dropout"):
            plain(**batch, present=present)


def test_presence_is_drawn_per_gene_from_seed_and_epoch():
    from chromoformer.training.trainer import Trainer

    class Stub:
        cfg = dataclasses.replace(TINY, mark_dropout=0.3)
        train_ds = list(range(4000))

    s = Stub()
    s.epoch = 3
    p = Trainer.mark_presence(s)
    assert p.shape == (4000, 7) and p.any(dim=1).all()
    assert 0.66 < p.float().mean() < 0.74  # 0.7 kept, nudged up by the at-least-one rule
    assert torch.equal(p, Trainer.mark_presence(s))  # a resumed or multi-process run draws the same
    s.epoch = 4
    assert not torch.equal(p, Trainer.mark_presence(s))
    s.cfg = TINY
    assert Trainer.mark_presence(s) is None


@pytest.fixture(scope="module")
def named_store(synthetic, tmp_path_factory):
    from chromoformer.data.sources import build_store_from_npy

    meta, npy = synthetic
    return meta, build_store_from_npy(npy, tmp_path_factory.mktemp("st") / "store", marks=list(MARKS)).path


def _train(meta, store, out, cfg, epochs=1, *extra):
    c = out.parent / f"{out.name}.yaml"
    c.write_text(yaml.safe_dump(cfg.to_dict()))
    main(["train", "-m", str(meta), "-d", str(store), "--fold", "1", "-o", str(out), "-c", str(c),
          "--epochs", str(epochs), "--num-workers", "0", *extra])


def test_training_with_dropout_resumes_bit_identically(named_store, tmp_path):
    meta, store = named_store
    cfg = dataclasses.replace(TINY, mark_dropout=0.3, bsz=4, lr=1e-3)
    _train(meta, store, tmp_path / "straight", cfg, 2)
    _train(meta, store, tmp_path / "resumed", cfg, 1)
    _train(meta, store, tmp_path / "resumed", cfg, 2, "--resume")
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["net"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["absent"], torch.full((7,), -1.0))  # the stand-in was learned


def test_predicting_without_a_mark(named_store, tmp_path):
    from chromoformer.data import read_metadata
    from chromoformer.data.marks import select_marks
    from chromoformer.data.store import BinnedStore
    from chromoformer.inference.predict import predict_genes

    meta, store = named_store
    _train(meta, store, tmp_path / "drop", dataclasses.replace(TINY, mark_dropout=0.3, bsz=4))
    _train(meta, store, tmp_path / "plain", dataclasses.replace(TINY, bsz=4))
    genes, src = read_metadata(meta), BinnedStore(store)
    drop = tmp_path / "drop" / "best.pt"
    full = predict_genes([drop], genes, src)
    without = predict_genes([drop], genes, src, absent_marks=["H3K36me3"])
    assert not np.allclose(full.prediction, without.prediction)
    view = select_marks(src, MARKS, absent=["H3K36me3"])
    assert view.present == (True, True, True, True, False, True, True)
    from chromoformer.data.sources import promoter_region

    region, crop = promoter_region(view, genes[0], 40000)
    sums, real = view.region_sums(region, crop, "g"), src.region_sums(region, crop, "g")
    assert (sums[:, 4] == 0).all() and real[:, 4].any() and np.array_equal(sums[:, [0, 1, 2, 3, 5, 6]],
                                                                        real[:, [0, 1, 2, 3, 5, 6]])
    # the absent mark's data is never read: a store whose H3K36me3 column is scrambled predicts the same
    from chromoformer.data.marks import MarkView

    scrambled = MarkView(src, [0, 1, 2, 3, 0, 5, 6], MARKS)  # H3K36me3 read from H3K4me1's column
    again = predict_genes([drop], genes, scrambled, absent_marks=["H3K36me3"])
    pd.testing.assert_frame_equal(again, without)
    with pytest.raises(UsageError, match="trained without mark dropout, so it cannot predict without H3K36me3"):
        predict_genes([tmp_path / "plain" / "best.pt"], genes, src, absent_marks=["H3K36me3"])
    with pytest.raises(UsageError, match="H3K99 not among the model's marks"):
        predict_genes([drop], genes, src, absent_marks=["H3K99"])
    with pytest.raises(UsageError, match="at least one of the model's marks must be measured"):
        predict_genes([drop], genes, src, absent_marks=list(MARKS))
    out = tmp_path / "cli.csv"
    main(["predict", "-m", str(meta), "-d", str(store), "-k", str(drop), "-o", str(out), "--absent-marks", "H3K36me3"])
    np.testing.assert_allclose(pd.read_csv(out).prediction, without.prediction, rtol=1e-6)
