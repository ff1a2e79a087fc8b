"""The files of one training run and how they are named (see :class:`RunPaths`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chromoformer.io import remove_stale_temps


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
