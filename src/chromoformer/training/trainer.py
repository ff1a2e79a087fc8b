"""One fold's training run: the loop, its files and their crash-consistent commit.

:class:`Trainer` trains and validates epoch by epoch, in one process or as one rank of a
``torchrun`` job, and writes a run's files in an order that survives a kill at any point
(see its docstring); :class:`~chromoformer.files.layouts.RunPaths` names those files. The
library entry point is :func:`chromoformer.training.fit.fit_fold`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from chromoformer.data.loader import make_loader
from chromoformer.engine.batches import batches_of, forward, output_table, predict_batches, target, to_device
from chromoformer.engine.checkpoint import (
    CheckpointError,
    EpochRecord,
    Key,
    held_out_of,
    read_checkpoint,
    save_checkpoint,
    space_estimate,
    without_resume_state,
)
from chromoformer.engine.distributed import Dist, RankBatches, share
from chromoformer.engine.loading import spec_of
from chromoformer.errors import RunError
from chromoformer.files.atomic import check_free_space, fault_point, write_table, write_text
from chromoformer.files.layouts import RunPaths, clean_leftovers
from chromoformer.files.predictions import VAL_COLUMNS, VAL_PAIR_COLUMNS
from chromoformer.metrics import main_metric, task_metrics
from chromoformer.model import build_model
from chromoformer.progress import tqdm
from chromoformer.spec import RunSpec
from chromoformer.training.objective import clip_norm, loss_fn, loss_kind, make_optimizer, summed, train_loss

log = logging.getLogger(__name__)


def score(out: np.ndarray, task: str) -> np.ndarray:
    """softmax P(class 1) for a classifier, the predicted value for a regressor or fold change for a pair; (N,)."""
    if task == "clf":
        return torch.softmax(torch.from_numpy(out), dim=1)[:, 1].numpy()
    return out[:, 0]


def epoch_metrics(out: np.ndarray, label: np.ndarray, task: str, kind: str = "standard") -> dict[str, float]:
    s = score(out, task)
    loss = loss_fn(torch.from_numpy(out), torch.from_numpy(label), task, kind).item() if len(out) else math.nan
    return {"loss": loss, **task_metrics(s, label, task)}


def data_provenance(source) -> dict:
    """The genome the training data came from: the store manifest's assembly and contigs (None if unknown)."""
    while not hasattr(source, "manifest") and hasattr(source, "source"):
        source = source.source  # a MarkView over a store
    m = getattr(source, "manifest", {}) or {}
    return {"assembly": m.get("assembly"), "contigs": dict(m.get("contigs", {})),
            "store": str(getattr(source, "path", ""))}


class Trainer:
    """One fold's training run (see :class:`RunPaths` for its files).

    Crash consistency: an epoch's outputs are written in this order: a new best checkpoint
    to a staging name, then ``last.pt`` (the commit point: it holds the history and the
    best epoch), then the staged best is renamed to ``best.pt``, then ``val_predictions``
    and ``metrics.tsv`` are derived. :meth:`repair` (run on every resume) finishes or
    undoes an interrupted epoch from ``last.pt``, so a kill at any point loses nothing.

    Under ``torchrun`` every rank holds the same model, optimizer and history; each trains
    on its share of every global batch (:class:`~chromoformer.engine.distributed.RankBatches`)
    and validates its share of the genes; only rank 0 writes.
    """

    def __init__(self, spec: RunSpec, train_ds, val_ds, paths: RunPaths, fold: int, device: torch.device,
                 num_workers: int | None = 0, best_optimizer: bool = True, dist: Dist | None = None) -> None:
        self.spec, self.cfg, self.task, self.fold = spec, spec.config, spec.task, fold
        self.train_ds, self.val_ds, self.paths, self.device = train_ds, val_ds, paths, device
        self.num_workers, self.best_optimizer, self.dist = num_workers, best_optimizer, dist or Dist()
        torch.manual_seed(spec.init_seed)
        self.model = build_model(spec.task, spec.config, spec.binsizes, spec.arch).to(device)
        self.net = self.model
        if self.dist.active:
            # static_graph: the 36 compatibility-only tensors that never get a gradient (SPEC §1) are
            # found once, on the first step, instead of searched for on every step
            ids = [device.index] if device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids, static_graph=True)
        self.opt = make_optimizer(self.model, spec)
        self.loss_kind, self.clip = loss_kind(spec), clip_norm(spec)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=spec.config.gamma)
        self.epoch, self.best, self.best_epoch, self.history = 0, -math.inf, 0, []
        self.val_ids = [g.gene_id for g in val_ds.genes]

    # ---- persistence -------------------------------------------------------------------
    def payload(self, val_out: np.ndarray, val_label: np.ndarray, val: dict[str, float]) -> dict:
        return EpochRecord(
            spec=self.spec, fold=self.fold, epoch=self.epoch, net=self.model.state_dict(),
            optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(), val_loss=val["loss"],
            val_metric=val[main_metric(self.task)], val_score=score(val_out, self.task), val_label=val_label,
            val_gene_ids=self.val_ids, best_score=self.best, best_epoch=self.best_epoch, history=self.history,
            data=data_provenance(self.train_ds.source), val_expr=val_out[:, 1:3] if self.spec.cells == 2 else None,
        ).payload()

    def space_needed(self) -> int:
        """Bytes the run's checkpoints take at most at once (last, best and a staged best)."""
        return 3 * space_estimate(self.model.state_dict(), len(self.val_ids))

    def start(self, resume: bool) -> None:
        """Bring the run directory to the state the first epoch starts from: rank 0 resumes (repairing the
        run's other files) or clears a killed first epoch's leftovers, checks the free space and writes
        ``config.yaml``; the other ranks resume from the same ``last.pt``."""
        paths = self.paths

        def prepare() -> None:
            if resume:
                self.resume(paths.last)
            else:
                clean_leftovers(paths, staged=True)  # a run killed before its first epoch committed
            if self.epoch < self.spec.config.num_epoch:
                check_free_space(paths.run_dir, self.space_needed(), "the run's checkpoints")
            write_text(paths.config, yaml.safe_dump(self.spec.config.to_dict(), sort_keys=False))

        self.dist.on_main(prepare)
        if resume and not self.dist.main:
            self.resume(paths.last, repair=False)

    def resume(self, path: Path, repair: bool = True) -> None:
        """Continue from ``last.pt``; ``repair`` (rank 0) brings the other files in line with it."""
        ck = read_checkpoint(path, map_location=self.device)
        if Key.HISTORY not in ck:
            raise CheckpointError(f"{path}: cannot resume: it was written by an older version; use another "
                                  "--output to start a new run")
        try:
            theirs = spec_of(ck, path)
        except Exception as e:
            raise CheckpointError(f"{path}: cannot resume: {e}") from None
        # num_epoch may grow (that extends the run); runs of earlier versions stored no init seed
        mine = self.spec.replace(num_epoch=theirs.config.num_epoch)
        if Key.SPEC not in ck:
            mine = mine.replace(init_seed=theirs.init_seed)
        spec_diff = mine.differences(theirs)
        theirs_ids = ck.get(Key.VAL_GENE_IDS, self.val_ids)
        other = [k for k, a, b in (("fold", self.fold, ck.get(Key.FOLD)), ("validation genes", self.val_ids,
                                                                           theirs_ids)) if a != b]
        if spec_diff or other:
            detail = f" (checkpoint: {theirs.describe(spec_diff)})" if spec_diff else ""
            raise CheckpointError(f"{path}: cannot resume: its {', '.join(spec_diff + other)} differ from this "
                                  f"run{detail}; use another --output to start a new run")
        try:
            self.model.load_state_dict(ck[Key.NET])
            self.opt.load_state_dict(ck[Key.OPTIMIZER])
            self.sched.load_state_dict(ck[Key.SCHEDULER])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: cannot resume: {' '.join(str(e).split())[:300]}") from None
        torch.set_rng_state(ck[Key.RNG_STATE].cpu())
        self.epoch, self.best, self.best_epoch = ck[Key.EPOCH], ck[Key.BEST_SCORE], ck[Key.BEST_EPOCH]
        self.history = list(ck[Key.HISTORY])
        if repair:
            self.repair(ck)
        log.info("resumed from %s at epoch %d (best %s = %.4f at epoch %d)", path, self.epoch,
                 main_metric(self.task), self.best, self.best_epoch)

    def repair(self, last: dict) -> None:
        """Bring every output in line with the committed ``last`` checkpoint (see class docstring)."""
        p = self.paths
        clean_leftovers(p)
        for epoch, staged in p.staged_bests():
            if epoch == last[Key.EPOCH]:
                os.replace(staged, p.best)  # its epoch committed: finish the rename
                log.info("repaired %s from the interrupted epoch %d", p.best, last[Key.EPOCH])
            else:
                staged.unlink()  # an epoch that never committed: it will be trained again
        best = read_checkpoint(p.best) if p.best.is_file() else None
        if best is None or best.get(Key.EPOCH) != self.best_epoch:
            if self.best_epoch == last[Key.EPOCH]:
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
        return payload if self.best_optimizer else without_resume_state(payload)

    def write_val_predictions(self, ck: dict) -> None:
        held_out = held_out_of(ck)
        frame = pd.DataFrame(dict(zip(VAL_COLUMNS, (held_out.gene_ids, held_out.labels, held_out.scores),
                                      strict=True)))
        if held_out.expr is not None:  # a two-cell model: each cell's predicted log2(RPKM + 1) too
            frame[list(VAL_PAIR_COLUMNS)] = held_out.expr
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
        d = self.dist
        # The shuffle of epoch e depends on (seed, e) alone: resumed runs see the same order.
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + self.epoch)
        order = torch.randperm(len(self.train_ds), generator=g).tolist()
        self.train_ds.presence = self.mark_presence()
        batches = RankBatches(order, self.cfg.bsz, len(order) > self.cfg.bsz, d.rank, d.world)
        sizes = [len(b) for b in batches.global_batches()]
        loader = make_loader(self.train_ds, batch_sampler=batches, num_workers=self.num_workers)
        outs, labels, total = [], [], 0.0
        with batches_of(loader) as it:
            bar = tqdm(it, total=len(loader), desc=f"epoch {self.epoch}/{self.cfg.num_epoch}", unit="batch",
                       leave=False, disable=None if d.main else True)
            for i, batch in enumerate(bar):
                batch = to_device(batch, self.device)
                out = forward(self.net, batch)
                label = target(batch)
                loss = train_loss(out, batch, self.task, self.loss_kind)
                if d.active:  # DDP averages over ranks: weigh this rank's mean so the average is the batch mean
                    loss = loss * (len(label) * d.world / sizes[i])
                objective = loss * sizes[i] if summed(self.loss_kind) else loss  # the original's batch sum
                if not torch.isfinite(loss):
                    raise RunError(f"epoch {self.epoch}: the training loss became {loss.item()} (diverged); lower lr "
                                   "in the config or check the input signal")
                self.opt.zero_grad(set_to_none=True)
                objective.backward()
                if self.clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                self.opt.step()
                total += loss.item() * (sizes[i] / d.world if d.active else len(label))
                outs.append(output_table(out).detach().float().cpu())
                labels.append(label.cpu())
                bar.set_postfix(loss=f"{loss.item():.4f}")
                fault_point("train.step")
        out, label, total = self._gathered(torch.cat(outs).numpy(), torch.cat(labels).numpy(), total)
        m = epoch_metrics(out, label, self.task, self.loss_kind)
        m["loss"] = total / max(len(out), 1)
        return m

    def mark_presence(self) -> torch.Tensor | None:
        """Under mark dropout, which marks each training gene shows this epoch: (N, n_feats) bool.

        Each mark is hidden with probability ``mark_dropout``, at least one stays. Drawn from
        (seed, epoch) alone, per gene, so resumed and multi-process runs hide the same marks.
        """
        p = self.cfg.mark_dropout
        if p == 0:
            return None
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + self.epoch + 500_000_003)
        r = torch.rand(len(self.train_ds), self.cfg.n_feats, generator=g)
        present = r >= p
        present[torch.arange(len(r)), r.argmax(dim=1)] = True
        return present

    def _gathered(self, out: np.ndarray, label: np.ndarray, total: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
        """Every rank's outputs, labels and loss sums, joined in rank order."""
        parts = self.dist.gather((out, label, total))
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                sum(p[2] for p in parts))

    def validate(self) -> tuple[np.ndarray, np.ndarray]:
        """Outputs and labels of every validation gene, in ``val_ids`` order (each rank predicts its share)."""
        d = self.dist
        ds = torch.utils.data.Subset(self.val_ds, range(len(self.val_ds))[share(len(self.val_ds), d.rank, d.world)])
        loader = make_loader(ds, batch_size=self.cfg.bsz, num_workers=self.num_workers)
        out, label, _ = predict_batches(self.model, loader, self.device, "validate")
        if not d.active:
            return out, label
        out = out.reshape(len(label), -1)  # an empty share comes back (0, 0)
        out, label, _ = self._gathered(out, label)
        return out, label

    def fit(self) -> list[dict]:
        while self.epoch < self.cfg.num_epoch:
            self.epoch += 1
            t0, lr = time.time(), self.opt.param_groups[0]["lr"]
            tr = self.train_epoch()
            val_out, val_label = self.validate()
            va = epoch_metrics(val_out, val_label, self.task, self.loss_kind)
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
            if self.dist.main:
                self.commit_epoch(self.payload(val_out, val_label, va), improved)
            self.dist.barrier()  # nobody starts the next epoch before the commit
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
