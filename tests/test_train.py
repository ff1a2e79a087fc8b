"""Training end to end: metrics, best/last checkpoints, resume, determinism, regression."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from chromoformer.cli import main
from chromoformer.data.folds import held_out_split, split_genes
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.engine.loading import load_model


def test_fold_to_held_out_split_mapping():
    assert [held_out_split(f) for f in (0, 1, 2, 3, 4)] == [4, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        held_out_split(5)


def test_split_genes_partitions(synthetic):
    from chromoformer.data import read_metadata

    genes = read_metadata(synthetic[0])
    tr, va = split_genes(genes, 2)
    assert {g.split for g in va} == {2} and 2 not in {g.split for g in tr} and len(tr) + len(va) == len(genes)


@pytest.fixture(scope="module")
def demo_meta4(demo, tmp_path_factory):
    """The demo genes are all split 1; spread them over 4 splits so a fold has training genes."""
    d = pd.read_csv(demo / "demo_meta.csv")
    d["split"] = [i % 4 + 1 for i in range(len(d))]
    p = tmp_path_factory.mktemp("meta") / "meta4.csv"
    d.to_csv(p, index=False)
    return p


def _train(meta, npy, out, *extra):
    main(
        [
            "train",
            "-m",
            str(meta),
            "-d",
            str(npy),
            "--fold",
            "0",
            "-o",
            str(out),
            "--num-workers",
            "0",
            *map(str, extra),
        ]
    )


@pytest.fixture(scope="module")
def two_epochs(demo, demo_meta4, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "straight"
    _train(demo_meta4, demo / "demo_data", out, "--epochs", 2)
    return out


def test_two_epochs_on_demo_writes_metrics_and_checkpoints(two_epochs):
    m = pd.read_csv(two_epochs / "metrics.tsv", sep="\t")
    assert list(m.epoch) == [1, 2]
    assert {"lr", "train_loss", "val_loss", "val_auroc", "val_ap", "val_accuracy"} <= set(m.columns)
    assert m.lr.tolist() == pytest.approx([3e-5, 3e-5 * 0.87])
    ck = read_checkpoint(two_epochs / "last.pt")
    for k in ("net", "optimizer", "epoch", "last_val_loss", "last_val_auc", "val_score", "val_label", "config"):
        assert k in ck
    assert ck["epoch"] == 2 and ck["last_val_auc"] == pytest.approx(100 * m.val_auroc.iloc[-1], abs=1e-3)
    assert len(ck["val_score"]) == len(ck["val_label"]) == 25
    best = read_checkpoint(two_epochs / "best.pt")
    assert best["epoch"] == int(m.epoch[m.val_auroc.idxmax()])
    assert load_model(two_epochs / "best.pt").task == "clf"
    assert (two_epochs / "val_predictions.csv").is_file()
    assert not list(two_epochs.glob(".*tmp"))  # no temp files left behind


def test_resume_continues_and_equals_uninterrupted(demo, demo_meta4, two_epochs, tmp_path, capsys):
    out = tmp_path / "resumed"
    _train(demo_meta4, demo / "demo_data", out, "--epochs", 1)
    assert read_checkpoint(out / "last.pt")["epoch"] == 1
    with pytest.raises(SystemExit) as e:  # never silently overwrite a run
        _train(demo_meta4, demo / "demo_data", out, "--epochs", 2)
    assert e.value.code == 2 and "last.pt exists: pass --resume" in capsys.readouterr().err
    _train(demo_meta4, demo / "demo_data", out, "--epochs", 2, "--resume")
    a, b = read_checkpoint(two_epochs / "last.pt"), read_checkpoint(out / "last.pt")
    assert b["epoch"] == 2
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    ma, mb = (pd.read_csv(p / "metrics.tsv", sep="\t").drop(columns="seconds") for p in (two_epochs, out))
    pd.testing.assert_frame_equal(ma, mb)


def test_regression_one_epoch(synthetic, tmp_path):
    meta, npy = synthetic
    _train(meta, npy, tmp_path / "reg", "--epochs", 1, "--regression", "--binsizes", 2000, 500)
    m = pd.read_csv(tmp_path / "reg" / "metrics.tsv", sep="\t")
    assert {"val_pearson", "val_spearman", "val_r2", "val_loss"} <= set(m.columns)
    # the held-out table names its target by what it is (log2(RPKM + 1)), not 'label'
    assert list(pd.read_csv(tmp_path / "reg" / "val_predictions.csv").columns) == ["gene_id", "expression", "score"]
    ck = read_checkpoint(tmp_path / "reg" / "last.pt")
    assert "last_val_r2" in ck and ck["binsizes"] == [2000, 500] and ck["task"] == "reg"
    lm = load_model(tmp_path / "reg" / "last.pt")
    assert lm.task == "reg" and lm.binsizes == (2000, 500)
    main(
        [
            "predict",
            "-m",
            str(meta),
            "-d",
            str(npy),
            "-k",
            str(tmp_path / "reg" / "last.pt"),
            "-o",
            str(tmp_path / "pred.csv"),
        ]
    )
    assert list(pd.read_csv(tmp_path / "pred.csv").columns) == ["gene_id", "prediction"]


def test_original_checkpoint_path_style_output(synthetic, tmp_path):
    meta, npy = synthetic
    _train(meta, npy, tmp_path / "ckpts" / "model-fold0.pt", "--epochs", 1)
    assert (tmp_path / "ckpts" / "model-fold0.pt").is_file()
    assert (tmp_path / "ckpts" / "model-fold0.best.pt").is_file()
    assert (tmp_path / "ckpts" / "model-fold0.metrics.tsv").is_file()
    # a second fold in the same folder (the published layout) writes its own files
    _train(meta, npy, tmp_path / "ckpts" / "model-fold1.pt", "--epochs", 1)
    names = sorted(p.name for p in (tmp_path / "ckpts").iterdir() if not p.name.startswith("."))
    assert names == sorted(f"model-fold{f}{s}" for f in (0, 1) for s in (
        ".pt", ".best.pt", ".metrics.tsv", ".val_predictions.csv", ".train.log", ".config.yaml"))


def test_python_dash_m_entry_point(synthetic, tmp_path):
    import subprocess
    import sys

    import yaml

    from chromoformer.config import load_config
    from fault_inputs import TINY

    meta, npy = synthetic
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({**load_config().to_dict(), **TINY}))  # the small model: the entry is tested
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "chromoformer.train",
            "--config",
            str(cfg),
            "--meta",
            str(meta),
            "--npy-dir",
            str(npy),
            "--fold",
            "0",
            "--binsizes",
            "2000",
            "500",
            "100",
            "--epochs",
            "1",
            "--output",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "m" / "last.pt").is_file()
