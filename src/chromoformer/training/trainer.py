"""One fold's training run: the epoch loop, in one process or as one rank of a ``torchrun`` job.

:meth:`Trainer.train` opens the run's folder (:class:`~chromoformer.training.run_directory.RunDirectory`, which
writes every file of the run in crash-consistent order), builds the datasets, resumes or starts, and trains
and validates epoch by epoch. The library entry points are :func:`chromoformer.training.fit.fit_fold` and, for
two cells, :func:`chromoformer.diff.fitting.fit_pair_fold`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from chromoformer.data.folds import held_out_split
from chromoformer.data.identity import changed_inputs, input_fingerprints
from chromoformer.data.loader import make_loader
from chromoformer.engine import distributed
from chromoformer.engine.batches import as_float, batches_of, forward, output_table, predict_batches, target, to_device
from chromoformer.engine.checkpoint import CheckpointError, EpochRecord, Key, read_checkpoint, space_estimate
from chromoformer.engine.distributed import Dist, RankBatches, share
from chromoformer.engine.loading import spec_of
from chromoformer.engine.memory import check_model_fits
from chromoformer.engine.precision import autocast, grad_scaler
from chromoformer.engine.runtime import DEFAULT_RUNTIME, Runtime
from chromoformer.engine.trackers import Trackers, hyperparameters
from chromoformer.errors import RunError, UsageError
from chromoformer.files.atomic import fault_point
from chromoformer.metrics import main_metric, task_metrics
from chromoformer.model import build_model
from chromoformer.progress import tqdm
from chromoformer.spec import RunSpec
from chromoformer.training.finetune import freeze_parts, load_parent
from chromoformer.training.objective import (
    clip_norm,
    describe,
    init_weights,
    is_best,
    loss_fn,
    loss_kind,
    make_optimizer,
    make_scheduler,
    summed,
    train_loss,
)
from chromoformer.training.run_directory import RunDirectory

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
    """One fold's training run (its files: :class:`~chromoformer.training.run_directory.RunDirectory`).

    Under ``torchrun`` every rank holds the same model, optimizer and history; each trains
    on its share of every global batch (:class:`~chromoformer.engine.distributed.RankBatches`)
    and validates its share of the genes; only rank 0 writes.
    """

    @classmethod
    def train(cls, spec: RunSpec, datasets: Callable[[], tuple[Dataset, Dataset]], run_dir: RunDirectory, *,
              fold: int, runtime: Runtime = DEFAULT_RUNTIME, what: str = "", init_from: str | Path | None = None
              ) -> list[dict]:
        """Train ``spec`` on ``datasets()`` (train, validation; built once the folder is open) into ``run_dir``;
        ``what`` names the data in the log; ``init_from``: the parent checkpoint a new (not resumed) run starts
        from (:mod:`chromoformer.training.finetune`). Returns the per-epoch history."""
        d, dev = distributed.from_env(runtime.device)
        with run_dir.opened(d):
            if runtime.threads:
                torch.set_num_threads(runtime.threads)
            train_ds, val_ds = datasets()
            n_train, n_val = len(train_ds), len(val_ds)
            if d.active and min(n_train, n_val, spec.config.bsz) < d.world:
                raise UsageError(f"{d.world} processes need at least as many training genes, validation genes and "
                                 f"batch size (bsz); got {n_train}, {n_val} and {spec.config.bsz}")
            log.info("fold %d: %d train / %d validation genes (split %d), source %s, %d process(es); model %s, "
                     "protocol %s", fold, n_train, n_val, held_out_split(fold) if 0 <= fold <= 4 else -1, what,
                     d.world, spec.arch, describe(spec))
            d.on_main(lambda: (train_ds.validate(), val_ds.validate()))
            tr = cls(spec, train_ds, val_ds, run_dir, fold, dev, runtime.num_workers, d, precision=runtime.precision)
            if init_from is not None and not run_dir.resumes:
                load_parent(tr.model, spec, init_from)
            tr.start()
            if d.main and runtime.loggers:
                tr.trackers = Trackers(runtime.loggers, run_dir.paths.trackers, hyperparameters(
                    spec.to_dict(), fold=fold, precision=runtime.precision, run=str(run_dir.paths.run_dir)),
                    tr.history)
            try:
                history = tr.fit()
            except BaseException:
                tr.trackers.close()
                raise
            tr.trackers.finish({"best_checkpoint": str(run_dir.paths.best), "last_checkpoint": str(run_dir.paths.last)})
            return history

    def __init__(self, spec: RunSpec, train_ds, val_ds, run_dir: RunDirectory, fold: int, device: torch.device,
                 num_workers: int | None = 0, dist: Dist | None = None, *, precision: str = "fp32") -> None:
        self.spec, self.cfg, self.task, self.fold = spec, spec.config, spec.task, fold
        self.precision, self.scaler = precision, grad_scaler(precision, device)
        self.train_ds, self.val_ds, self.run_dir, self.device = train_ds, val_ds, run_dir, device
        self.num_workers, self.dist = num_workers, dist or Dist()
        check_model_fits(spec, device, purpose="training", where=str(run_dir.paths.run_dir))
        torch.manual_seed(spec.init_seed)
        self.model = build_model(spec.task, spec.config, spec.binsizes, spec.arch)
        init_weights(self.model, spec)
        freeze_parts(self.model, spec)
        self.model.to(device)
        self.net = self.model
        if self.dist.active:
            # static_graph: the 36 compatibility-only tensors that never get a gradient (docs/original.md §1) are
            # found once, on the first step, instead of searched for on every step
            ids = [device.index] if device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids, static_graph=True)
        self.opt = make_optimizer(self.model, spec)
        self.loss_kind, self.clip = loss_kind(spec), clip_norm(spec)
        self.sched, self.sched_per_step = make_scheduler(self.opt, spec)
        self.epoch, self.best, self.best_epoch, self.history = 0, -math.inf, 0, []
        self.val_ids = [g.gene_id for g in val_ds.genes]
        self.inputs = input_fingerprints(train_ds, val_ds)
        self.trackers = Trackers((), run_dir.paths.trackers, {})  # none unless Trainer.train is given loggers

    # ---- persistence -------------------------------------------------------------------
    def payload(self, val_out: np.ndarray, val_label: np.ndarray, val: dict[str, float]) -> dict:
        return EpochRecord(
            spec=self.spec, fold=self.fold, epoch=self.epoch, net=self.model.state_dict(),
            optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(), val_loss=val["loss"],
            val_metric=val[main_metric(self.task)], val_score=score(val_out, self.task), val_label=val_label,
            val_gene_ids=self.val_ids, best_score=self.best, best_epoch=self.best_epoch, history=self.history,
            data={**data_provenance(self.train_ds.source), "inputs": self.inputs},
            val_expr=val_out[:, 1:3] if self.spec.cells == 2 else None,
            precision=self.precision, grad_scaler=self.scaler.state_dict() if self.scaler is not None else None,
        ).payload()

    def space_needed(self) -> int:
        """Bytes the run's checkpoints take at most at once (last, best and a staged best)."""
        return 3 * space_estimate(self.model.state_dict(), len(self.val_ids))

    def start(self) -> None:
        """Bring the run to the state the first epoch starts from: rank 0 resumes (repairing the run's other
        files) or starts it, checks the free space and writes ``config.yaml``; the other ranks resume from the
        same ``last.pt``."""
        rd = self.run_dir

        def prepare() -> None:
            if rd.resumes:
                self.resume(rd.paths.last)
            rd.prepare(self.spec.config, self.space_needed() if self.epoch < self.spec.config.num_epoch else None)

        self.dist.on_main(prepare)
        if rd.resumes and not self.dist.main:
            self.resume(rd.paths.last, repair=False)

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
        if ck.get(Key.PRECISION, "fp32") != self.precision:
            raise CheckpointError(f"{path}: cannot resume: the run trained in {ck.get(Key.PRECISION, 'fp32')} and "
                                  f"this one computes in {self.precision}; give --precision "
                                  f"{ck.get(Key.PRECISION, 'fp32')} or use another --output to start a new run")
        changed = changed_inputs((ck.get(Key.DATA) or {}).get("inputs"), self.inputs)
        if changed:
            raise CheckpointError(f"{path}: cannot resume: {' and '.join(changed)} changed since the run started "
                                  "(its checkpoint was trained on other data); use another --output to start a new "
                                  "run on these inputs")
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
            if self.scaler is not None:
                self.scaler.load_state_dict(ck[Key.GRAD_SCALER])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: cannot resume: {' '.join(str(e).split())[:300]}") from None
        torch.set_rng_state(ck[Key.RNG_STATE].cpu())
        self.epoch, self.best, self.best_epoch = ck[Key.EPOCH], ck[Key.BEST_SCORE], ck[Key.BEST_EPOCH]
        self.history = list(ck[Key.HISTORY])
        if repair:
            self.run_dir.repair(ck, self.history)
        log.info("resumed from %s at epoch %d (best %s = %.4f at epoch %d)", path, self.epoch,
                 main_metric(self.task), self.best, self.best_epoch)

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
                with autocast(self.precision, self.device):
                    out = forward(self.net, batch)
                out = as_float(out)  # the loss in float32 whatever the forward pass computed in
                loss = train_loss(out, batch, self.task, self.loss_kind)
                label = target(batch)
                if d.active:  # DDP averages over ranks: weigh this rank's mean so the average is the batch mean
                    loss = loss * (len(label) * d.world / sizes[i])
                objective = loss * sizes[i] if summed(self.loss_kind) else loss  # the original's batch sum
                if not torch.isfinite(loss):
                    raise RunError(f"epoch {self.epoch}: the training loss became {loss.item()} (diverged); lower lr "
                                   "in the config or check the input signal")
                self.opt.zero_grad(set_to_none=True)
                if self.scaler is None:
                    objective.backward()
                    if self.clip is not None:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                    self.opt.step()
                else:  # fp16: scaled gradients, unscaled before clipping; a step with inf/NaN gradients is skipped
                    self.scaler.scale(objective).backward()
                    if self.clip is not None:
                        self.scaler.unscale_(self.opt)
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                    self.scaler.step(self.opt)
                    self.scaler.update()
                if self.sched_per_step:
                    self.sched.step()
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
        out, label, _ = predict_batches(self.model, loader, self.device, desc="validate", precision=self.precision)
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
            if not self.sched_per_step:
                self.sched.step()
            key = main_metric(self.task)
            improved = is_best(self.spec, va[key], self.best, self.best_epoch)
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
                self.run_dir.commit_epoch(self.payload(val_out, val_label, va), self.epoch, improved, self.history)
                self.trackers.epoch(self.history[-1])
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
