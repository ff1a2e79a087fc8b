"""best.pt without optimizer state, and the weights-only safetensors export."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from chromoformer.cli import main
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.engine.loading import load_model


def test_save_optimizer_last_only_and_safetensors_export(synthetic, tmp_path, capsys):
    pytest.importorskip("safetensors")
    meta, npy = synthetic
    run = tmp_path / "run"
    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(run), "--epochs", "1",
          "--num-workers", "0", "--save-optimizer", "last-only"])
    best, last = read_checkpoint(run / "best.pt"), read_checkpoint(run / "last.pt")
    assert "optimizer" not in best and "optimizer" in last
    assert (run / "best.pt").stat().st_size < 0.5 * (run / "last.pt").stat().st_size

    out = tmp_path / "model.safetensors"
    main(["export-weights", str(run / "best.pt"), "-o", str(out)])
    a, b = load_model(run / "best.pt"), load_model(out)
    assert (b.task, b.binsizes, b.config, b.arch) == (a.task, a.binsizes, a.config, a.arch)
    assert b.checkpoint["marks"] == a.checkpoint["marks"]
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(),
                                                 strict=True))
    main(["predict", "-m", str(meta), "-d", str(npy), "-k", str(run / "best.pt"), "-o", str(tmp_path / "a.csv")])
    main(["predict", "-m", str(meta), "-d", str(npy), "-k", str(out), "-o", str(tmp_path / "b.csv")])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))

    out.write_bytes(b"garbage" * 10)
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(out)])
    assert e.value.code == 2 and "not a readable safetensors file" in capsys.readouterr().err


def test_ensemble_of_folds_differing_only_in_training_settings(synthetic, tmp_path):
    """Folds trained with different num_epoch/lr ensemble; a different architecture does not."""
    meta, npy = synthetic
    for fold, epochs in ((1, 1), (2, 2)):
        main(["train", "-m", str(meta), "-d", str(npy), "--fold", str(fold), "-o", str(tmp_path / f"f{fold}"),
              "--epochs", str(epochs), "--num-workers", "0"])
    main(["predict", "-m", str(meta), "-d", str(npy), "-k", str(tmp_path / "f1" / "best.pt"), "-k",
          str(tmp_path / "f2" / "best.pt"), "-o", str(tmp_path / "p.csv")])
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(pd.read_csv(meta))
