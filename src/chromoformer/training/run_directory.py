"""A training run's folder: opened (created, locked, logged into), its files written in crash-consistent order,
repaired on resume, and removed when a failed run committed nothing.

:class:`RunDirectory` owns every file of a run (:class:`~chromoformer.files.layouts.RunPaths` names them):
``last.pt`` (the commit point), ``best.pt``, ``metrics.tsv``, ``val_predictions.csv``, ``config.yaml`` and
``train.log``. The epoch loop (:class:`~chromoformer.training.trainer.Trainer`) hands it each epoch's payload.

Crash consistency: an epoch's outputs are written in this order: a new best checkpoint to a staging name, then
``last.pt`` (it holds the history and the best epoch), then the staged best is renamed to ``best.pt``, then
``val_predictions.csv`` and ``metrics.tsv`` are derived. :meth:`RunDirectory.repair` (run on every resume)
finishes or undoes an interrupted epoch from ``last.pt``, so a kill at any point loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from chromoformer.config import ChromoformerConfig
from chromoformer.engine import distributed
from chromoformer.engine.checkpoint import Key, held_out_of, read_checkpoint, save_checkpoint, without_resume_state
from chromoformer.errors import RunError, UsageError
from chromoformer.files.atomic import check_free_space, fault_point, writable_output, write_table, write_text
from chromoformer.files.layouts import RunPaths, clean_leftovers
from chromoformer.files.locking import FileLock
from chromoformer.files.predictions import VAL_PAIR_COLUMNS, val_columns

log = logging.getLogger(__name__)
SAVE_OPTIMIZER = ("all", "last-only")  # last-only: best.pt without optimizer state (a checkpoint to share)


def check_run_output(out: Path, resume: bool) -> RunPaths:
    """The run files of ``--output`` ``out`` (a run directory, or ``NAME.pt`` for the original's one-file
    layout), refused when a new run would overwrite another's files."""
    if out.suffix != ".pt" and out.is_file():
        raise UsageError(f"--output {out} is a file; give a run directory (or a NAME.pt checkpoint path)")
    paths = RunPaths.from_output(out)
    writable_output(paths.last, "run")
    if paths.last.exists() and not resume:
        raise RunError(f"{paths.last} exists: pass --resume to continue that run, or choose another --output")
    found = [f.name for f in (paths.best, paths.metrics, paths.val_predictions) if f.exists()]
    if found and not resume and not paths.last.exists():  # not a run's (no last.pt): they would be overwritten
        raise RunError(f"{paths.run_dir} already holds {', '.join(found)} but no {paths.last.name}: a new run would "
                       "overwrite them; choose another --output (or pass --resume if they are an interrupted "
                       "run's)")
    return paths


class RunDirectory:
    """The files of one fold's run under ``output``; ``resume`` continues the run found there."""

    def __init__(self, output: str | Path, *, resume: bool = False, save_optimizer: str = "all") -> None:
        if save_optimizer not in SAVE_OPTIMIZER:
            raise UsageError(f"save_optimizer must be one of {', '.join(SAVE_OPTIMIZER)}, got {save_optimizer!r}")
        self.output = Path(output)
        self.paths = check_run_output(self.output, resume)
        self.resume, self.best_optimizer = resume, save_optimizer == "all"

    @property
    def resumes(self) -> bool:
        """Whether training continues a committed run (``--resume`` and a ``last.pt`` there)."""
        return self.resume and self.paths.last.exists()

    @contextlib.contextmanager
    def opened(self, d: distributed.Dist) -> Iterator[None]:
        """Rank 0 creates and locks the folder and logs into ``train.log`` for the block's duration; when the
        block fails before an epoch committed, nothing of the run is left behind (a lost torchrun peer is
        reported as such)."""
        created = not self.paths.run_dir.exists()
        try:
            with contextlib.ExitStack() as stack:
                d.on_main(lambda: self._open(stack))
                yield
        except RuntimeError as e:
            lost = distributed.lost_peer(e, d)
            self._discard_uncommitted(d, created)
            if lost is not None:
                raise lost from None
            raise
        except BaseException:
            self._discard_uncommitted(d, created)
            raise

    def _open(self, stack: contextlib.ExitStack) -> None:
        paths = self.paths
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        stack.enter_context(FileLock(paths.lock, f"run directory {paths.run_dir}" if self.output.suffix != ".pt"
                                     else f"run {self.output}"))
        if paths.last.exists() and not self.resume:  # another run committed while we were starting
            raise RunError(f"{paths.last} exists: pass --resume to continue that run, or choose another --output")
        handler = logging.FileHandler(paths.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("chromoformer")
        root.addHandler(handler)
        stack.callback(handler.close)
        stack.callback(root.removeHandler, handler)
        if root.getEffectiveLevel() > logging.INFO:  # a library caller who set up no logging still gets train.log
            stack.callback(root.setLevel, root.level)
            root.setLevel(logging.INFO)

    def _discard_uncommitted(self, d: distributed.Dist, created: bool) -> None:
        """After a failure: nothing committed means no half-made run is left behind."""
        paths = self.paths
        if d.main and not paths.last.exists():
            for f in (paths.log, paths.config):
                f.unlink(missing_ok=True)
            if created:
                shutil.rmtree(paths.run_dir, ignore_errors=True)

    def prepare(self, config: ChromoformerConfig, space_needed: int | None) -> None:
        """Before the first epoch (rank 0): a new run clears a killed first epoch's leftovers; the free space
        for ``space_needed`` bytes of checkpoints is checked (None: no epoch left to train); ``config.yaml``."""
        if not self.resumes:
            clean_leftovers(self.paths, staged=True)  # a run killed before its first epoch committed
        if space_needed is not None:
            check_free_space(self.paths.run_dir, space_needed, "the run's checkpoints")
        write_text(self.paths.config, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def repair(self, last: dict, history: list[dict]) -> None:
        """Bring every output in line with the committed ``last`` checkpoint (see the module docstring)."""
        p, best_epoch = self.paths, last[Key.BEST_EPOCH]
        clean_leftovers(p)
        for epoch, staged in p.staged_bests():
            if epoch == last[Key.EPOCH]:
                os.replace(staged, p.best)  # its epoch committed: finish the rename
                log.info("repaired %s from the interrupted epoch %d", p.best, last[Key.EPOCH])
            else:
                staged.unlink()  # an epoch that never committed: it will be trained again
        best = read_checkpoint(p.best) if p.best.is_file() else None
        if best is None or best.get(Key.EPOCH) != best_epoch:
            if best_epoch == last[Key.EPOCH]:
                save_checkpoint(self.best_payload(last), p.best)
                best = last
                log.info("re-created %s (epoch %d) from %s", p.best, best_epoch, p.last)
            else:
                log.warning("%s of epoch %d is missing and cannot be re-created without retraining; it will be "
                            "written again when an epoch improves on it", p.best, best_epoch)
                best = None
        if best is not None:
            self.write_val_predictions(best)
        self.write_metrics(history)

    def best_payload(self, payload: dict) -> dict:
        """What best.pt holds: the epoch's payload, without optimizer state if so chosen."""
        return payload if self.best_optimizer else without_resume_state(payload)

    def write_val_predictions(self, ck: dict) -> None:
        held_out = held_out_of(ck)
        columns = val_columns(ck[Key.TASK])
        frame = pd.DataFrame(dict(zip(columns, (held_out.gene_ids, held_out.labels, held_out.scores), strict=True)))
        if held_out.expr is not None:  # a two-cell model: each cell's predicted log2(RPKM + 1) too
            frame[list(VAL_PAIR_COLUMNS)] = held_out.expr
        write_table(frame, self.paths.val_predictions)

    def write_metrics(self, history: list[dict]) -> None:
        write_table(pd.DataFrame(history), self.paths.metrics, sep="\t", float_format="%.6g")

    def commit_epoch(self, payload: dict, epoch: int, improved: bool, history: list[dict]) -> None:
        """Write one epoch's outputs in crash-consistent order (see the module docstring)."""
        p = self.paths
        staged = p.staged_best(epoch)
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
        self.write_metrics(history)
        fault_point("train.metrics_written")
