"""Experiment trackers (``--logger``): TensorBoard, MLflow, Weights & Biases and plain csv, offline by default.

Each epoch a training run sends its history row (the losses and metrics ``metrics.tsv`` holds) to every tracker
asked for; at the start the run spec goes in as hyper-parameters, at the end the best and last checkpoint paths.
Each tracker writes under the run's ``trackers/`` folder (:data:`chromoformer.files.layouts.TRACKER_FILES`):

==============  ===========================================================================================
``csv``         ``csv/metrics.csv`` (one row per epoch, rewritten from the run's history) and ``hparams.yaml``
``tensorboard`` event files in ``tensorboard/`` (``tensorboard --logdir RUN/trackers/tensorboard``)
``mlflow``      a local store ``mlruns/`` (``mlflow ui --backend-store-uri RUN/trackers/mlruns``), or the
                server ``MLFLOW_TRACKING_URI`` names
``wandb``       an offline run in ``wandb/`` (``wandb sync`` uploads it later); ``WANDB_MODE=online`` logs live
==============  ===========================================================================================

A resumed run continues the same tracker runs (their ids are kept in ``ids.json``). Trackers only read: they never
touch torch's random state or the model, so a run's weights are bit-identical with and without them
(``tests/test_trackers.py``). Each is an optional extra, imported only when asked for. A tracker that fails while
the run trains is reported once and dropped; the training goes on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from chromoformer.errors import RunError, UsageError
from chromoformer.files.atomic import write_table, write_text
from chromoformer.files.layouts import TRACKER_FILES

log = logging.getLogger(__name__)

TRACKERS = ("tensorboard", "mlflow", "wandb", "csv")
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny"),
            "wandb": ("wandb", "wandb")}  # tracker: (module, pip package)
PROJECT = "chromoformer"  # the MLflow experiment and W&B project runs are logged under


def check_loggers(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple if each is a known tracker whose package is installed, once; else :class:`UsageError`."""
    names = tuple(names)
    for n in names:
        if n not in TRACKERS:
            raise UsageError(f"--logger must be one of {', '.join(TRACKERS)}, got {n!r}")
        if n in PACKAGES and importlib.util.find_spec(PACKAGES[n][0]) is None:
            raise UsageError(f"--logger {n} needs the {PACKAGES[n][1]} package: pip install "
                             f"'chromoformer-ng[{n}]' (or pip install {PACKAGES[n][1]})")
    if len(set(names)) != len(names):
        raise UsageError(f"--logger {next(n for n in names if names.count(n) > 1)} is given twice")
    return names


def hyperparameters(spec_dict: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The run spec (and ``extra``) flattened to ``{name: number or string}``: ``config.lr``, ``binsizes`` ..."""
    out: dict[str, Any] = {}

    def put(prefix: str, v: Any) -> None:
        if isinstance(v, Mapping):
            for k, x in v.items():
                put(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, (list, tuple)):
            out[prefix] = ",".join(map(str, v))
        else:
            out[prefix] = v if isinstance(v, (int, float, str, bool)) else str(v)

    put("", {**spec_dict, **extra})
    return out


def _numbers(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a history row, except its epoch."""
    return {k: float(v) for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


class _Csv:
    def __init__(self, folder: Path, hparams: dict[str, Any], ids: dict) -> None:
        self.metrics, self.hparams = folder / TRACKER_FILES["csv_metrics"], folder / TRACKER_FILES["csv_hparams"]
        self.metrics.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.hparams, yaml.safe_dump(hparams, sort_keys=False))
        self.rows: list[dict] = []
        self.hparams_dict = dict(hparams)

    def history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        import pandas as pd

        self.rows = [dict(r) for r in rows]
        if self.rows:
            write_table(pd.DataFrame(self.rows), self.metrics)

    def epoch(self, row: Mapping[str, Any]) -> None:
        self.history([*self.rows, row])

    def finish(self, paths: Mapping[str, str]) -> None:
        write_text(self.hparams, yaml.safe_dump({**self.hparams_dict, **paths}, sort_keys=False))

    def abort(self) -> None:
        pass


class _TensorBoard:
    def __init__(self, folder: Path, hparams: dict[str, Any], ids: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.hparams = hparams
        self.writer = SummaryWriter(log_dir=str(folder / TRACKER_FILES["tensorboard"]))
        self.writer.add_text("run_spec", "\n".join(f"    {k}: {v}" for k, v in hparams.items()), 0)

    def history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        pass  # a resumed run's earlier epochs are already in its event files

    def epoch(self, row: Mapping[str, Any]) -> None:
        for k, v in _numbers(row).items():
            self.writer.add_scalar(k, v, int(row["epoch"]))
        self.writer.flush()

    def finish(self, paths: Mapping[str, str]) -> None:
        self.writer.add_text("checkpoints", "\n".join(f"    {k}: {v}" for k, v in paths.items()))
        self.writer.close()

    def abort(self) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, folder: Path, hparams: dict[str, Any], ids: dict) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # MLflow's file store: no database needed offline (MLflow 3 asks for this opt-in)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (folder / TRACKER_FILES["mlflow"]).resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        run_id = ids.get("mlflow")
        if run_id is None:
            exp = self.client.get_experiment_by_name(PROJECT)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(PROJECT)
            run_id = self.client.create_run(exp_id, run_name=str(hparams.get("run", ""))).info.run_id
            for k, v in hparams.items():
                self.client.log_param(run_id, k, str(v)[:500])
        ids["mlflow"] = self.run_id = run_id

    def history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        pass

    def epoch(self, row: Mapping[str, Any]) -> None:
        for k, v in _numbers(row).items():
            self.client.log_metric(self.run_id, k, v, step=int(row["epoch"]))

    def finish(self, paths: Mapping[str, str]) -> None:
        for k, v in paths.items():
            self.client.set_tag(self.run_id, k, v)
        self.client.set_terminated(self.run_id)

    def abort(self) -> None:
        self.client.set_terminated(self.run_id, status="FAILED")


class _Wandb:
    def __init__(self, folder: Path, hparams: dict[str, Any], ids: dict) -> None:
        import wandb

        d = folder / TRACKER_FILES["wandb"]
        d.mkdir(parents=True, exist_ok=True)
        run_id = ids.get("wandb") or secrets.token_hex(4)  # os.urandom: no random state of ours is drawn
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), dir=str(folder), id=run_id,
                              resume="allow", config=hparams, name=str(hparams.get("run", "")) or None,
                              mode=os.environ.get("WANDB_MODE", "offline"),
                              settings=wandb.Settings(console="off", silent=True))
        ids["wandb"] = run_id

    def history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        pass

    def epoch(self, row: Mapping[str, Any]) -> None:
        self.run.log(_numbers(row), step=int(row["epoch"]))

    def finish(self, paths: Mapping[str, str]) -> None:
        self.run.summary.update(dict(paths))
        self.run.finish()

    def abort(self) -> None:
        self.run.finish(exit_code=1)


_CLASSES = {"csv": _Csv, "tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _Wandb}


class Trackers:
    """The trackers of one run (rank 0's), each fed every epoch; see the module docstring.

    Parameters
    ----------
    names : tracker names (:data:`TRACKERS`), checked by :func:`check_loggers`
    folder : the run's tracker folder (:attr:`chromoformer.files.layouts.RunPaths.trackers`)
    hparams : what :func:`hyperparameters` makes of the run spec
    history : the epochs a resumed run already has (written by the csv tracker; the others hold them already)
    """

    def __init__(self, names: Sequence[str], folder: Path, hparams: dict[str, Any],
                 history: Sequence[Mapping[str, Any]] = ()) -> None:
        self.active: dict[str, Any] = {}
        if not names:
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.ids_file = folder / TRACKER_FILES["ids"]
        ids = json.loads(self.ids_file.read_text()) if self.ids_file.exists() and history else {}
        for n in check_loggers(names):
            try:
                self.active[n] = _CLASSES[n](folder, hparams, ids)
                self.active[n].history(history)
            except Exception as e:  # a tracker's own failure, before any epoch: the user asked for it, so stop
                self.close()
                raise RunError(f"--logger {n}: could not start it in {folder}: {' '.join(str(e).split())[:300]}") \
                    from None
        write_text(self.ids_file, json.dumps(ids, indent=1))

    def _each(self, what: str, *args: Any) -> None:
        for n, t in list(self.active.items()):
            try:
                getattr(t, what)(*args)
            except Exception as e:  # never let a tracker end a training run: report it once and drop it
                log.warning("--logger %s failed (%s); it logs nothing more for this run", n,
                            " ".join(str(e).split())[:300])
                del self.active[n]

    def epoch(self, row: Mapping[str, Any]) -> None:
        """Log one epoch's history row (``epoch``, ``lr``, ``train_*``, ``val_*``, ``seconds``)."""
        self._each("epoch", row)

    def finish(self, paths: Mapping[str, str]) -> None:
        """Record the checkpoint paths and close every tracker."""
        self._each("finish", paths)
        self.active.clear()

    def close(self) -> None:
        """Close the trackers without a final record (the run stopped on an error; the runs are marked failed)."""
        for t in self.active.values():
            with contextlib.suppress(Exception):
                t.abort()
        self.active.clear()
