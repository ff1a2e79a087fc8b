"""``chromoformer verify``: stored validation metrics recomputed, scores re-predicted, on the real
published-format checkpoint and on our own (classifier and regressor)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from chromoformer.cli import main
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.errors import CheckpointError, UsageError
from chromoformer.inference.verify import ORIGINAL_SHUFFLE_SEED, format_report, verify


def _by_check(checks):
    return {c.check.split(" (")[0].split(" re-predicted")[0]: c for c in checks}


def test_scrambled_published_checkpoint(demo, capsys):
    """Its val_score is reproduced by re-prediction; its stored last_val_auc/loss (50.0, 0.5) do not
    describe that val_score (AUROC 0.672), and verify says so with exit code 1."""
    ck = demo / "scrambled-clf-fold1.pt"
    checks = _by_check(verify([ck], meta=demo / "demo_meta.csv", signal=demo / "demo_data"))
    pred = checks["val_score"]
    assert pred.ok and pred.recomputed < 1e-5 and "metadata order" in pred.note and "fold 1, 100 genes" in pred.check
    raw = read_checkpoint(ck)
    auc = checks["last_val_auc / 100"]
    assert auc.stored == pytest.approx(raw["last_val_auc"] / 100)
    assert auc.recomputed == pytest.approx(roc_auc_score(raw["val_label"], raw["val_score"]), abs=1e-12)
    assert auc.ok is False and checks["last_val_loss"].ok is False
    with pytest.raises(SystemExit) as e:
        main(["verify", str(ck)])
    assert e.value.code == 1
    out = capsys.readouterr()
    assert "MISMATCH" in out.out and "2 check(s) do not hold" in out.err


def _original_order_copy(demo, tmp_path):
    """The scrambled checkpoint as the original train.py would have written it: validation genes in its
    shuffled order (seed 123) and stored metrics that describe its val_score."""
    raw = read_checkpoint(demo / "scrambled-clf-fold1.pt")
    meta = pd.read_csv(demo / "demo_meta.csv")
    perm = meta.reset_index(drop=True).sample(frac=1, random_state=ORIGINAL_SHUFFLE_SEED).index.to_numpy()
    score, label = raw["val_score"][perm], raw["val_label"][perm]
    assert not np.array_equal(label, raw["val_label"])  # the order matters for this check
    p = score.astype(np.float64)
    raw.update(val_score=score, val_label=label, last_val_auc=roc_auc_score(label, score) * 100,
               last_val_loss=torch.tensor(-np.mean(np.where(label == 1, np.log(p), np.log(1 - p)))))
    out = tmp_path / "original-order-fold1.pt"
    torch.save(raw, out)
    return out, raw


def test_original_shuffled_order_is_found_and_a_consistent_checkpoint_passes(demo, tmp_path):
    path, _ = _original_order_copy(demo, tmp_path)
    checks = verify([path], meta=demo / "demo_meta.csv", signal=demo / "demo_data")
    assert all(c.ok is not False for c in checks), format_report(checks)
    pred = _by_check(checks)["val_score"]
    assert "original train.py order" in pred.note and pred.recomputed < 1e-5
    main(["verify", str(path), "-m", str(demo / "demo_meta.csv"), "-d", str(demo / "demo_data")])  # exit 0


def test_an_edited_val_score_is_caught(demo, tmp_path):
    path, raw = _original_order_copy(demo, tmp_path)
    raw["val_score"] = raw["val_score"].copy()
    raw["val_score"][7] += 0.01  # small enough that labels and AUROC could stay the same
    raw["last_val_auc"] = roc_auc_score(raw["val_label"], raw["val_score"]) * 100
    torch.save(raw, path)
    pred = _by_check(verify([path], meta=demo / "demo_meta.csv", signal=demo / "demo_data"))["val_score"]
    assert pred.ok is False and pred.recomputed == pytest.approx(0.01, abs=1e-4)


@pytest.mark.parametrize("task", ["clf", "reg"])
def test_our_checkpoints_pass_every_check(synthetic, tmp_path, task):
    meta, npy = synthetic
    out = tmp_path / "run"
    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(out), "--epochs", "1",
          "--num-workers", "0", *(["--regression"] if task == "reg" else [])])
    checks = verify([out / "best.pt"], meta=meta, signal=npy)
    assert [c.ok for c in checks if c.ok is not None] == [True, True, True], format_report(checks)
    assert "val_gene_ids" in _by_check(checks)["val_score"].note


def test_bad_requests_are_one_line_errors(demo, synthetic, tmp_path):
    ck = demo / "scrambled-clf-fold1.pt"
    with pytest.raises(UsageError, match="needs both the metadata"):
        verify([ck], meta=demo / "demo_meta.csv")
    with pytest.raises(UsageError, match="fold 2 has 0 validation genes but the checkpoint stores 100"):
        verify([ck], meta=demo / "demo_meta.csv", signal=demo / "demo_data", fold=2)
    raw = read_checkpoint(ck)
    del raw["val_score"]
    torch.save(raw, tmp_path / "noscore.pt")
    with pytest.raises(CheckpointError, match="noscore.pt: no 'val_score': nothing to verify"):
        verify([tmp_path / "noscore.pt"])
    raw = read_checkpoint(ck)
    torch.save(raw, tmp_path / "nofold.pt")
    with pytest.raises(UsageError, match="does not say its fold; pass --fold"):
        verify([tmp_path / "nofold.pt"], meta=demo / "demo_meta.csv", signal=demo / "demo_data")
