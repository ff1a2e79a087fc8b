"""One run spec end to end: marks by name, other bin sizes, the init seed, scoped logging.

Changing the marks (6 named marks) or the bin sizes (1000/200/50) in one place must work
through train -> predict -> interpret; checkpoints carry the spec and every reader checks it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from chromoformer.cli import main
from chromoformer.config import MARKS, ChromoformerConfig
from chromoformer.data import read_metadata
from chromoformer.data.folds import split_genes
from chromoformer.data.sources import NpyDirSource
from chromoformer.engine.loading import load_model
from chromoformer.errors import ConfigError
from chromoformer.model import build_model
from chromoformer.spec import RunSpec
from chromoformer.training.fit import fit_fold
from fault_inputs import TINY, tiny_data

SIX = ("H3K4me1", "H3K4me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac")


def _cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spec")
    tiny_data(root, 40, seed=3)
    # six-mark npy files (H3K9me3 left out) and a config for them
    (root / "npy6").mkdir()
    for f in (root / "data" / "npy").glob("*.npy"):
        np.save(root / "npy6" / f.name, np.load(f)[[0, 1, 3, 4, 5, 6]])
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    (root / "config6.yaml").write_text(yaml.safe_dump({**cfg, "n_feats": 6}))
    return root


@pytest.mark.slow  # train + predict + interpret of a 6-mark model: the slow suite (.ci/run)
def test_six_named_marks_train_predict_interpret(data, tmp_path, capsys):
    store = tmp_path / "store6"
    assert _cli(capsys, "build-store", "-d", data / "npy6", "-o", store, "--n-feats", "6", "--marks", *SIX)[0] == 0
    run = tmp_path / "run"
    code, err = _cli(capsys, "train", "-m", data / "data" / "meta.csv", "-d", store, "-c", data / "config6.yaml",
                     "--fold", "1", "-o", run, "--epochs", "1", "--num-workers", "0")
    assert code == 0, err
    lm = load_model(run / "best.pt")
    assert lm.marks == SIX and lm.config.n_feats == 6
    code, err = _cli(capsys, "predict", "-m", data / "data" / "meta.csv", "-d", store, "-k", run / "best.pt",
                     "-o", tmp_path / "pred.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 40
    code, err = _cli(capsys, "interpret", "-m", data / "data" / "meta.csv", "-d", store, "-k", run / "best.pt",
                     "-o", tmp_path / "interp")
    assert code == 0, err
    pert = pd.read_csv(tmp_path / "interp" / "perturbation.tsv", sep="\t")
    assert sorted(pert[pert.perturbation == "zero_mark_promoter"].target.unique()) == sorted(SIX)


def test_default_config_follows_the_store_marks(data, tmp_path, capsys):
    """Without -c, n_feats comes from the store; a user config that disagrees is refused with one line."""
    store = tmp_path / "store6"
    _cli(capsys, "build-store", "-d", data / "npy6", "-o", store, "--n-feats", "6", "--marks", *SIX)
    spec = _spec_of(capsys, "-d", store)
    assert spec.marks == SIX and spec.config.n_feats == 6
    code, err = _cli(capsys, "train", "-m", data / "data" / "meta.csv", "-d", store, "-c", data / "config.yaml",
                     "--fold", "1", "-o", tmp_path / "r", "--epochs", "1")
    assert code == 2 and "n_feats=7" in err and "6 marks" in err


def _spec_of(capsys, *argv) -> RunSpec:
    from chromoformer.cli.train import build_train_parser as build_parser
    from chromoformer.cli.train import spec_from_args

    return spec_from_args(build_parser().parse_args(["-m", "x.csv", "--fold", "1", *map(str, argv)]))


def test_binsizes_1000_200_50_train_predict_interpret(data, tmp_path, capsys):
    run = tmp_path / "runs" / "fold1"
    code, err = _cli(capsys, "train", "-m", data / "data" / "meta.csv", "-d", data / "data" / "npy", "-c",
                     data / "config.yaml", "--fold", "1", "-o", run, "--epochs", "1", "--num-workers", "0",
                     "--binsizes", "1000", "200", "50")
    assert code == 0, err
    lm = load_model(run / "best.pt")
    assert lm.binsizes == (1000, 200, 50) and lm.spec.base == 50
    stores = list((tmp_path / "runs" / ".stores").iterdir())
    assert [json.loads((s / "manifest.json").read_text())["base"] for s in stores] == [50]
    preds = []
    for extra in (("--store", stores[0]), ()):  # through the base-50 store and from the npy files
        out = tmp_path / f"pred{len(preds)}.csv"
        code, err = _cli(capsys, "predict", "-m", data / "data" / "meta.csv", "-d", data / "data" / "npy",
                         "-k", run / "best.pt", "-o", out, *extra)
        assert code == 0, err
        preds.append(pd.read_csv(out))
    np.testing.assert_allclose(preds[0].logit_1, preds[1].logit_1, rtol=0, atol=1e-5)
    code, err = _cli(capsys, "interpret", "-m", data / "data" / "meta.csv", "-d", stores[0], "-k", run / "best.pt",
                     "-o", tmp_path / "interp", "--genes", preds[0].gene_id[0])
    assert code == 0, err
    npz = np.load(tmp_path / "interp" / "attributions.npz")
    assert {k for k in npz.files if k.startswith("promoter_")} == {"promoter_1000", "promoter_200", "promoter_50"}
    assert npz["promoter_50"].shape[1:] == (40000 // 50, 7)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[Path, Path]:
    """A checkpoint trained on a store with the paper's marks, and that store."""
    root = tmp_path_factory.mktemp("trained")
    from chromoformer.data.sources import build_store_from_npy

    store = build_store_from_npy(data / "data" / "npy", root / "store").path
    main(["train", "-m", str(data / "data" / "meta.csv"), "-d", str(store), "-c", str(data / "config.yaml"),
          "--fold", "1", "-o", str(root / "run"), "--epochs", "1", "--num-workers", "0"])
    return root / "run" / "best.pt", store


def _reordered_store(src: Path, out: Path, order: list[int], names: list[str]) -> Path:
    from chromoformer.data.sources import build_store_from_npy

    npy = out.parent / f"{out.name}-npy"
    npy.mkdir()
    for f in src.glob("*.npy"):
        np.save(npy / f.name, np.load(f)[order])
    return build_store_from_npy(npy, out, marks=names).path


def test_marks_in_another_order_need_an_explicit_map(data, trained, tmp_path, capsys):
    ckpt, store = trained
    order = [6, 5, 4, 3, 2, 1, 0]
    other = _reordered_store(data / "data" / "npy", tmp_path / "rev", order, [MARKS[i] for i in order])
    meta = data / "data" / "meta.csv"
    code, err = _cli(capsys, "predict", "-m", meta, "-d", other, "-k", ckpt, "-o", tmp_path / "p.csv")
    assert code == 2 and "differ from the model's" in err and "in order" in err and "--mark-map" in err
    assert not (tmp_path / "p.csv").exists()
    ref = tmp_path / "ref.csv"
    assert _cli(capsys, "predict", "-m", meta, "-d", store, "-k", ckpt, "-o", ref)[0] == 0
    code, err = _cli(capsys, "predict", "-m", meta, "-d", other, "-k", ckpt, "-o", tmp_path / "p.csv",
                     "--mark-map", "by-name")
    assert code == 0, err
    a, b = pd.read_csv(ref), pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(a.logit_1, b.logit_1, rtol=0, atol=1e-6)


def test_renamed_marks_map_explicitly(data, trained, tmp_path, capsys):
    ckpt, store = trained
    renamed = [m.replace("H3", "") for m in MARKS]  # K4me1, K4me3, ...
    other = _reordered_store(data / "data" / "npy", tmp_path / "renamed", list(range(7)), renamed)
    meta = data / "data" / "meta.csv"
    code, err = _cli(capsys, "predict", "-m", meta, "-d", other, "-k", ckpt, "-o", tmp_path / "p.csv")
    assert code == 2 and "in names" in err
    code, err = _cli(capsys, "predict", "-m", meta, "-d", other, "-k", ckpt, "-o", tmp_path / "p.csv",
                     "--mark-map", "H3K27ac=K27ac")  # one mapped, the other six still missing
    assert code == 2 and "no mark H3K4me1" in err
    mapping = [f"{m}={r}" for m, r in zip(MARKS, renamed, strict=True)]
    code, err = _cli(capsys, "predict", "-m", meta, "-d", other, "-k", ckpt, "-o", tmp_path / "p.csv",
                     "--mark-map", *mapping)
    assert code == 0, err
    ref = tmp_path / "ref.csv"
    _cli(capsys, "predict", "-m", meta, "-d", store, "-k", ckpt, "-o", ref)
    np.testing.assert_allclose(pd.read_csv(ref).logit_1, pd.read_csv(tmp_path / "p.csv").logit_1, atol=1e-6)


def test_checkpoint_carries_the_spec_and_resume_names_what_differs(trained, data, tmp_path, capsys):
    ckpt, store = trained
    ck = torch.load(ckpt, weights_only=False)
    spec = RunSpec.from_dict(ck["spec"])
    assert spec == load_model(ckpt).spec and spec.init_seed == 42 and spec.marks == MARKS
    run = tmp_path / "run"
    shutil.copytree(ckpt.parent, run)
    code, err = _cli(capsys, "train", "-m", data / "data" / "meta.csv", "-d", store, "-c", data / "config.yaml",
                     "--fold", "1", "-o", run, "--epochs", "2", "--resume", "--binsizes", "2000", "500")
    assert code == 2 and "binsizes" in err and "2000, 500, 100" in err


def test_default_initial_weights_are_the_originals(data, tmp_path):
    """Training from scratch starts from torch.manual_seed(42) weights, as the original's train.py."""
    genes = read_metadata(data / "data" / "meta.csv")
    tr, va = split_genes(genes, 1)
    cfg = ChromoformerConfig.from_dict({**ChromoformerConfig().to_dict(), **TINY, "num_epoch": 1, "lr": 1e-12})
    spec = RunSpec(cfg)
    src = NpyDirSource(data / "data" / "npy")
    fit_fold(spec, tr, va, src, tmp_path / "a", fold=1)
    fit_fold(spec.replace(init_seed=7), tr, va, src, tmp_path / "b", fold=1)
    torch.manual_seed(42)
    want = build_model("clf", cfg).state_dict()
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["net"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["net"]
    # lr 1e-12: one epoch moves no weight by more than ~1e-11
    assert max((a[k] - want[k]).abs().max().item() for k in want) < 1e-9
    assert max((b[k] - want[k]).abs().max().item() for k in want) > 1e-3


def test_each_run_logs_into_its_own_file(data, tmp_path):
    genes = read_metadata(data / "data" / "meta.csv")
    cfg = ChromoformerConfig.from_dict({**ChromoformerConfig().to_dict(), **TINY, "num_epoch": 1})
    src = NpyDirSource(data / "data" / "npy")
    for fold in (1, 2):
        fit_fold(RunSpec(cfg), *split_genes(genes, fold), src, tmp_path / f"fold{fold}", fold=fold)
    for fold, other in ((1, 2), (2, 1)):
        log = (tmp_path / f"fold{fold}" / "train.log").read_text()
        assert f"fold {fold} epoch 1/1" in log and f"fold {other} " not in log
    assert not [h for h in logging.getLogger("chromoformer").handlers if isinstance(h, logging.FileHandler)]


@pytest.mark.parametrize(("changes", "message"), [
    ({"binsizes": (2000, 300)}, "positive divisor of w_max"),
    ({"binsizes": (100, 100)}, "repeated bin size"),
    ({"marks": ("a", "a", "b", "c", "d", "e", "f")}, "distinct"),
    ({"marks": ("a", "b")}, "n_feats=7"),
    ({"task": "cls"}, "task"),
    ({"arch": "enformer"}, "model must be one of"),
    ({"init_seed": -1}, "init_seed"),
])
def test_impossible_specs_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunSpec(**changes)


def test_spec_round_trips_and_names_differences():
    s = RunSpec().replace(num_epoch=3, binsizes=(1000, 200, 50))
    assert RunSpec.from_dict(s.to_dict()) == s
    assert s.base == 50
    t = s.replace(lr=1e-4, marks=tuple(reversed(MARKS)))
    assert s.differences(t) == ["marks", "config.lr"]
    assert s.differences(t, ("task", "arch", "binsizes", "marks", "model config")) == ["marks"]
    with pytest.raises(ConfigError, match="unknown run spec key"):
        RunSpec.from_dict({**s.to_dict(), "dropout": 0.1})


def test_predict_with_the_training_config_passed_again(data, trained, tmp_path, capsys):
    """-c with settings that only affect training (lr, num_epoch) is not mistaken for an edited checkpoint."""
    ckpt, store = trained
    cfg = yaml.safe_load((data / "config.yaml").read_text())
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**cfg, "lr": 0.5, "num_epoch": 99}))
    meta = data / "data" / "meta.csv"
    assert _cli(capsys, "predict", "-m", meta, "-d", store, "-k", ckpt, "-o", tmp_path / "a.csv")[0] == 0
    code, err = _cli(capsys, "predict", "-m", meta, "-d", store, "-k", ckpt, "-o", tmp_path / "b.csv",
                     "-c", tmp_path / "c.yaml")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
