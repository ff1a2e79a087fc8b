"""Experiment trackers (engine/trackers, ``--logger``): each writes its files offline under the run's trackers/
folder, a resumed run continues the same tracker runs, and a run's weights are bit-identical with and without
them; unknown or uninstalled trackers are one line; ``--use-wandb`` is ``--logger wandb``."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
import torch

from chromoformer.cli import main, options
from chromoformer.cli.train import build_train_parser
from chromoformer.engine import trackers
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.engine.runtime import Runtime
from chromoformer.errors import UsageError

INSTALLED = [t for t in trackers.TRACKERS
             if t not in trackers.PACKAGES or importlib.util.find_spec(trackers.PACKAGES[t][0]) is not None]


def _train(synthetic, out, *extra):
    meta, npy = synthetic
    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(out), "--num-workers", "0",
          "--binsizes", "2000", "500", *map(str, extra)])


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for k in ("MLFLOW_TRACKING_URI", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_every_tracker_writes_offline_and_the_weights_are_bit_identical(synthetic, tmp_path):
    missing = sorted(set(trackers.TRACKERS) - set(INSTALLED))
    if missing:
        pytest.skip(f"tracker packages not installed: {', '.join(missing)} (pip install -e '.[dev]')")
    _train(synthetic, tmp_path / "plain", "--epochs", 2)
    _train(synthetic, tmp_path / "logged", "--epochs", 2, *[x for t in INSTALLED for x in ("--logger", t)])
    a, b = read_checkpoint(tmp_path / "plain" / "last.pt"), read_checkpoint(tmp_path / "logged" / "last.pt")
    assert a["net"].keys() == b["net"].keys()
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    assert torch.equal(a["rng_state"], b["rng_state"])

    folder = tmp_path / "logged" / "trackers"
    history = pd.read_csv(tmp_path / "logged" / "metrics.tsv", sep="\t")
    csv = pd.read_csv(folder / "csv" / "metrics.csv")
    assert list(csv.epoch) == [1, 2]
    assert csv.val_loss.tolist() == pytest.approx(history.val_loss.tolist(), rel=1e-6)
    hp = (folder / "csv" / "hparams.yaml").read_text()
    assert "config.lr:" in hp and "best_checkpoint:" in hp and "precision: fp32" in hp

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(folder / "tensorboard"))
    ev.Reload()
    assert [e.step for e in ev.Scalars("val_auroc")] == [1, 2]
    assert [e.value for e in ev.Scalars("val_loss")] == pytest.approx(history.val_loss.tolist(), rel=1e-6)

    from mlflow.tracking import MlflowClient

    ids = json.loads((folder / "ids.json").read_text())
    client = MlflowClient(tracking_uri=(folder / "mlruns").resolve().as_uri())
    run = client.get_run(ids["mlflow"])
    assert run.info.status == "FINISHED" and run.data.params["task"] == "clf"
    assert run.data.tags["best_checkpoint"].endswith("best.pt")
    assert [m.step for m in client.get_metric_history(ids["mlflow"], "val_loss")] == [1, 2]

    runs = list((folder / "wandb").glob(f"offline-run-*-{ids['wandb']}"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), "no offline W&B run written"


def test_a_resumed_run_continues_the_same_tracker_runs(synthetic, tmp_path):
    extra = ["--logger", "csv"] + (["--logger", "mlflow"] if "mlflow" in INSTALLED else [])
    _train(synthetic, tmp_path / "run", "--epochs", 1, *extra)
    folder = tmp_path / "run" / "trackers"
    first = json.loads((folder / "ids.json").read_text())
    _train(synthetic, tmp_path / "run", "--epochs", 2, "--resume", *extra)
    assert json.loads((folder / "ids.json").read_text()) == first
    assert list(pd.read_csv(folder / "csv" / "metrics.csv").epoch) == [1, 2]
    if "mlflow" in INSTALLED:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=(folder / "mlruns").resolve().as_uri())
        assert [m.step for m in client.get_metric_history(first["mlflow"], "val_loss")] == [1, 2]


def test_unknown_repeated_or_uninstalled_trackers_are_one_line(monkeypatch):
    with pytest.raises(UsageError, match="--logger must be one of tensorboard, mlflow, wandb, csv"):
        Runtime(loggers=("neptune",))
    with pytest.raises(UsageError, match="--logger csv is given twice"):
        Runtime(loggers=("csv", "csv"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(UsageError, match=r"--logger wandb needs the wandb package: pip install 'chromoformer-ng\["):
        Runtime(loggers=("wandb",))


def test_use_wandb_is_the_same_as_logger_wandb(synthetic):
    meta, npy = synthetic
    base = ["-m", str(meta), "-d", str(npy), "--fold", "1"]
    if "wandb" not in INSTALLED:
        with pytest.raises(UsageError, match="needs the wandb package"):
            options.runtime(build_train_parser().parse_args([*base, "--use-wandb"]))
        return
    a = options.runtime(build_train_parser().parse_args([*base, "--use-wandb"]))
    b = options.runtime(build_train_parser().parse_args([*base, "--logger", "wandb"]))
    assert a.loggers == b.loggers == ("wandb",)
    assert options.runtime(build_train_parser().parse_args(base)).loggers == ()
