"""One fold's training run: the loop, its files and their crash-consistent commit.

:class:`Trainer` trains and validates epoch by epoch and writes a run's files in an order
that survives a kill at any point (see its docstring); :class:`RunPaths` names those
files. The command line and argument checks live in :mod:`chromoformer.train`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from chromoformer import __version__
from chromoformer.checkpoint import CheckpointError, checkpoint_nbytes, read_checkpoint, save_checkpoint
from chromoformer.config import ChromoformerConfig
from chromoformer.errors import RunError
from chromoformer.faults import fault_point
from chromoformer.io import remove_stale_temps, write_table
from chromoformer.metrics import classification_metrics, main_metric, regression_metrics
from chromoformer.model import build_model
from chromoformer.predict import predict_batches, to_device
from chromoformer.progress import tqdm

log = logging.getLogger("chromoformer.train")


def loss_fn(out: torch.Tensor, label: torch.Tensor, task: str) -> torch.Tensor:
    """Cross-entropy on 2 logits, or MSE on (B, 1) against (B,) targets (no broadcasting)."""
    if task == "clf":
        return F.cross_entropy(out, label)
    return F.mse_loss(out[:, 0], label)


def score(out: np.ndarray, task: str) -> np.ndarray:
    """softmax P(class 1) for a classifier, the predicted value for a regressor; (N,)."""
    if task == "clf":
        return torch.softmax(torch.from_numpy(out), dim=1)[:, 1].numpy()
    return out[:, 0]


def evaluate(out: np.ndarray, label: np.ndarray, task: str) -> dict[str, float]:
    s = score(out, task)
    loss = loss_fn(torch.from_numpy(out), torch.from_numpy(label), task).item() if len(out) else math.nan
    m = classification_metrics(s, label) if task == "clf" else regression_metrics(s, label)
    return {"loss": loss, **m}


@dataclass(frozen=True)
class RunPaths:
    """Files of one training run.

    ``-o DIR`` gives ``DIR/{last.pt, best.pt, metrics.tsv, ...}``; ``-o DIR/NAME.pt`` (the
    original's layout, several folds in one folder) gives ``DIR/NAME.pt``,
    ``DIR/NAME.best.pt``, ``DIR/NAME.metrics.tsv``, ... so folds never overwrite each other.
    """

    run_dir: Path
    last: Path
    best: Path
    metrics: Path
    val_predictions: Path
    log: Path
    config: Path
    lock: Path

    @classmethod
    def from_output(cls, out: Path) -> RunPaths:
        if out.suffix == ".pt":
            d, stem = out.parent, out.stem
            return cls(d, out, d / f"{stem}.best.pt", d / f"{stem}.metrics.tsv", d / f"{stem}.val_predictions.csv",
                       d / f"{stem}.train.log", d / f"{stem}.config.yaml", d / f".{stem}.lock")
        return cls(out, out / "last.pt", out / "best.pt", out / "metrics.tsv", out / "val_predictions.csv",
                   out / "train.log", out / "config.yaml", out / ".lock")

    def staged_best(self, epoch: int) -> Path:
        """Where an epoch's new best checkpoint waits until that epoch is committed."""
        return self.best.with_name(f".{self.best.name}.epoch{epoch}")

    def staged_bests(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every staged best checkpoint present (see :meth:`staged_best`)."""
        pattern = re.compile(rf"\.{re.escape(self.best.name)}\.epoch(\d+)")
        found = ((pattern.fullmatch(p.name), p) for p in self.best.parent.glob(f".{self.best.name}.epoch*"))
        return [(int(m.group(1)), p) for m, p in found if m]

    def outputs(self) -> tuple[Path, ...]:
        return self.last, self.best, self.metrics, self.val_predictions, self.config


def clean_leftovers(p: RunPaths, staged: bool = False) -> None:
    """Remove temporaries of a killed writer of this run (call while holding the run's lock);
    with ``staged``, also best checkpoints of epochs that never committed."""
    for f in (*p.outputs(), p.log):
        remove_stale_temps(f, min_age=0)
    if staged:
        for _, f in p.staged_bests():
            f.unlink()


class Trainer:
    """One fold's training run (see :class:`RunPaths` for its files).

    Crash consistency: an epoch's outputs are written in this order: a new best checkpoint
    to a staging name, then ``last.pt`` (the commit point: it holds the history and the
    best epoch), then the staged best is renamed to ``best.pt``, then ``val_predictions``
    and ``metrics.tsv`` are derived. :meth:`repair` (run on every resume) finishes or
    undoes an interrupted epoch from ``last.pt``, so a kill at any point loses nothing.
    """

    def __init__(
        self,
        cfg: ChromoformerConfig,
        task: str,
        binsizes: tuple[int, ...],
        train_ds,
        val_ds,
        paths: RunPaths,
        fold: int,
        device: torch.device,
        num_workers: int = 0,
        init_seed: int | None = None,
        arch: str = "chromoformer",
        marks: tuple[str, ...] | None = None,
        best_optimizer: bool = True,
    ) -> None:
        self.cfg, self.task, self.binsizes, self.fold = cfg, task, binsizes, fold
        self.train_ds, self.val_ds, self.paths, self.device = train_ds, val_ds, paths, device
        self.num_workers, self.arch, self.marks = num_workers, arch, marks
        self.best_optimizer = best_optimizer
        torch.manual_seed(cfg.seed if init_seed is None else init_seed)
        self.model = build_model(task, cfg, binsizes, arch).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=cfg.gamma)
        self.epoch, self.best, self.best_epoch, self.history = 0, -math.inf, 0, []
        self.val_ids = [g.gene_id for g in val_ds.genes]

    # ---- persistence -------------------------------------------------------------------
    def payload(self, val_out: np.ndarray, val_label: np.ndarray, val: dict[str, float]) -> dict:
        key = "last_val_auc" if self.task == "clf" else "last_val_r2"
        return {
            "net": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "epoch": self.epoch,
            "last_val_loss": torch.tensor(val["loss"]),
            key: 100.0 * val[main_metric(self.task)],
            "val_score": score(val_out, self.task).astype(np.float32),
            "val_label": val_label,
            "val_gene_ids": list(self.val_ids),
            "config": self.cfg.to_dict(),
            "binsizes": list(self.binsizes),
            "task": self.task,
            "arch": self.arch,
            "marks": list(self.marks) if self.marks else None,
            "fold": self.fold,
            "best_score": self.best,
            "best_epoch": self.best_epoch,
            "history": list(self.history),
            "rng_state": torch.get_rng_state(),
            "chromoformer_version": __version__,
        }

    def space_needed(self) -> int:
        """Bytes the run's checkpoints take at most at once (last, best and a staged best)."""
        n = len(self.val_ids)
        return 3 * checkpoint_nbytes({"net": self.model.state_dict(), "opt": [p for p in self.model.parameters()] * 2,
                                      "val": np.zeros(2 * n, np.float32)})

    def resume(self, path: Path) -> None:
        ck = read_checkpoint(path, map_location=self.device)

        def same(c: dict | None) -> dict | None:  # num_epoch may grow: that extends the run
            return None if c is None else {**c, "num_epoch": 0}

        fields = {"config": (same(self.cfg.to_dict()), same(ck.get("config"))),
                  "bin sizes": (list(self.binsizes), ck.get("binsizes")), "task": (self.task, ck.get("task")),
                  "fold": (self.fold, ck.get("fold")), "model": (self.arch, ck.get("arch", "chromoformer")),
                  "validation genes": (self.val_ids, ck.get("val_gene_ids", self.val_ids))}
        differ = [k for k, (want, got) in fields.items() if want != got]
        if differ or "history" not in ck:
            why = f"its {', '.join(differ)} differ from this run" if differ else "it was written by an older version"
            raise CheckpointError(f"{path}: cannot resume: {why}; use another --output to start a new run")
        try:
            self.model.load_state_dict(ck["net"])
            self.opt.load_state_dict(ck["optimizer"])
            self.sched.load_state_dict(ck["scheduler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: cannot resume: {' '.join(str(e).split())[:300]}") from None
        torch.set_rng_state(ck["rng_state"])
        self.epoch, self.best, self.best_epoch = ck["epoch"], ck["best_score"], ck["best_epoch"]
        self.history = list(ck["history"])
        self.repair(ck)
        log.info("resumed from %s at epoch %d (best %s = %.4f at epoch %d)", path, self.epoch,
                 main_metric(self.task), self.best, self.best_epoch)

    def repair(self, last: dict) -> None:
        """Bring every output in line with the committed ``last`` checkpoint (see class docstring)."""
        p = self.paths
        clean_leftovers(p)
        for epoch, staged in p.staged_bests():
            if epoch == last["epoch"]:
                os.replace(staged, p.best)  # its epoch committed: finish the rename
                log.info("repaired %s from the interrupted epoch %d", p.best, last["epoch"])
            else:
                staged.unlink()  # an epoch that never committed: it will be trained again
        best = read_checkpoint(p.best) if p.best.is_file() else None
        if best is None or best.get("epoch") != self.best_epoch:
            if self.best_epoch == last["epoch"]:
                save_checkpoint(self.best_payload(last), p.best)
                best = last
                log.info("re-created %s (epoch %d) from %s", p.best, self.best_epoch, p.last)
            else:
                log.warning("%s of epoch %d is missing and cannot be re-created without retraining; it will be "
                            "written again when an epoch improves on it", p.best, self.best_epoch)
                best = None
        if best is not None:
            self.write_val_predictions(best)
        self.write_metrics()

    def best_payload(self, payload: dict) -> dict:
        """What best.pt holds: the epoch's payload, without optimizer state if so chosen."""
        if self.best_optimizer:
            return payload
        return {k: v for k, v in payload.items() if k not in ("optimizer", "scheduler", "rng_state")}

    def write_val_predictions(self, ck: dict) -> None:
        frame = pd.DataFrame({"gene_id": ck["val_gene_ids"], "label": ck["val_label"], "score": ck["val_score"]})
        write_table(frame, self.paths.val_predictions)

    def write_metrics(self) -> None:
        write_table(pd.DataFrame(self.history), self.paths.metrics, sep="\t", float_format="%.6g")

    def commit_epoch(self, payload: dict, improved: bool) -> None:
        """Write one epoch's outputs in crash-consistent order (see class docstring)."""
        p = self.paths
        staged = p.staged_best(self.epoch)
        if improved:
            save_checkpoint(self.best_payload(payload), staged)
            fault_point("train.best_staged")
        save_checkpoint(payload, p.last)
        fault_point("train.epoch_committed")
        if improved:
            os.replace(staged, p.best)
            fault_point("train.best_promoted")
            self.write_val_predictions(payload)
            fault_point("train.val_predictions_written")
        self.write_metrics()
        fault_point("train.metrics_written")

    # ---- loop ---------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        self.model.train()
        # The shuffle of epoch e depends on (seed, e) alone: resumed runs see the same order.
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + self.epoch)
        order = torch.randperm(len(self.train_ds), generator=g).tolist()
        loader = DataLoader(
            self.train_ds,
            batch_size=self.cfg.bsz,
            drop_last=len(order) > self.cfg.bsz,
            sampler=order,
            num_workers=self.num_workers,
        )
        outs, labels, total = [], [], 0.0
        bar = tqdm(loader, desc=f"epoch {self.epoch}/{self.cfg.num_epoch}", unit="batch", leave=False)
        for batch in bar:
            batch = to_device(batch, self.device)
            out = self.model(**batch)
            loss = loss_fn(out, batch["label"], self.task)
            if not torch.isfinite(loss):
                raise RunError(f"epoch {self.epoch}: the training loss became {loss.item()} (diverged); lower lr "
                               "in the config or check the input signal")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(out)
            outs.append(out.detach().float().cpu())
            labels.append(batch["label"].cpu())
            bar.set_postfix(loss=f"{loss.item():.4f}")
            fault_point("train.step")
        out, label = torch.cat(outs).numpy(), torch.cat(labels).numpy()
        m = evaluate(out, label, self.task)
        m["loss"] = total / max(len(out), 1)
        return m

    def fit(self) -> list[dict]:
        val_loader = DataLoader(self.val_ds, batch_size=self.cfg.bsz, num_workers=self.num_workers)
        while self.epoch < self.cfg.num_epoch:
            self.epoch += 1
            t0, lr = time.time(), self.opt.param_groups[0]["lr"]
            tr = self.train_epoch()
            val_out, val_label, _ = predict_batches(self.model, val_loader, self.device, "validate")
            va = evaluate(val_out, val_label, self.task)
            self.sched.step()
            key = main_metric(self.task)
            improved = va[key] > self.best or (self.best_epoch == 0)
            if improved:
                self.best, self.best_epoch = va[key], self.epoch
            self.history.append({
                "epoch": self.epoch,
                "lr": lr,
                **{f"train_{k}": v for k, v in tr.items()},
                **{f"val_{k}": v for k, v in va.items()},
                "seconds": round(time.time() - t0, 1),
            })
            self.commit_epoch(self.payload(val_out, val_label, va), improved)
            log.info(
                "fold %d epoch %d/%d: train loss %.4f, val loss %.4f, val %s %.4f%s",
                self.fold,
                self.epoch,
                self.cfg.num_epoch,
                tr["loss"],
                va["loss"],
                key,
                va[key],
                " (best)" if improved else "",
            )
        return self.history
