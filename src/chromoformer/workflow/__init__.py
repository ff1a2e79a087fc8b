"""The workflow: run the packaged Snakefile on a YAML sample sheet (``chromoformer workflow``)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from chromoformer.errors import ChromoformerError, EvaluationError, UsageError, WorkflowError
from chromoformer.files.atomic import write_text
from chromoformer.files.checked import numeric_column, read_table
from chromoformer.files.layouts import EvaluationFiles, WorkflowFiles, WorkflowPattern
from chromoformer.files.locking import FileLock
from chromoformer.workflow.jobs import describe, leftover_jobs, parse_failures
from chromoformer.workflow.remote_inputs import roadmap_sheet
from chromoformer.workflow.sheet import check_sheet, check_sheet_values, pair_name

log = logging.getLogger(__name__)


def snakefile() -> Path:
    return Path(str(resources.files("chromoformer.workflow").joinpath("Snakefile")))


def _unlock_if_stale(directory: Path, cmd: list[str]) -> None:
    """Remove snakemake's lock left by a killed run (only called while we hold our own lock)."""
    locks = directory / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        log.warning("removing the snakemake lock left by an interrupted run in %s", directory)
        subprocess.run([*cmd, "--unlock"], check=False, capture_output=True)


def run_workflow(config: str | Path, *, directory: str | Path = ".", cores: int | str = "all",
                 snakemake_args: Sequence[str] = (), network_jobs: int = 2) -> Path:
    """Check the sample sheet ``config`` and run the packaged Snakefile on it in ``directory``.

    Resumable: finished steps are kept, and a stale lock of a killed run is removed. Returns
    ``directory``; a failing step raises :class:`WorkflowError` naming its log. ``network_jobs``: downloads
    at once (the ``network`` resource of the download jobs).
    """
    if isinstance(network_jobs, bool) or not isinstance(network_jobs, int) or not 1 <= network_jobs <= 64:
        raise UsageError(f"--network-jobs must be 1..64, got {network_jobs!r}")
    sheet = check_sheet(config)
    exe = shutil.which("snakemake")
    if exe is None:
        raise UsageError("snakemake is not installed: pip install 'snakemake>=9'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = WorkflowFiles(directory)
    resolved = files.resolved_sheet  # the sheet with absolute paths: what snakemake reads
    write_text(resolved, yaml.safe_dump(sheet, sort_keys=False))
    cmd = [exe, "-s", str(snakefile()), "--configfile", str(resolved.resolve()),
           "--directory", str(directory), "--cores", str(cores)]
    if sheet.get("downloads"):  # a sheet naming public files: its download jobs take the network resource
        cmd += ["--resources", f"network={network_jobs}"]
    # Our lock proves no other `chromoformer workflow` runs here, so a snakemake lock is stale.
    with FileLock(files.lock, f"workflow directory {directory}"):
        left = leftover_jobs(directory)
        if left:
            raise WorkflowError(f"{directory}: {len(left)} cluster job(s) of an earlier, interrupted run of this "
                                f"directory are still queued or running (SLURM job ids {' '.join(left[:10])}); "
                                "wait for them to end or scancel them, then run the same command again")
        _unlock_if_stale(directory, cmd)
        started = time.time()
        rc = subprocess.call([*cmd, "--rerun-incomplete", *snakemake_args])
    if rc:
        failed = parse_failures(_snakemake_log(directory, started))
        what = describe(failed, directory) if failed else f"snakemake failed (exit {rc}); see {files.logs}"
        raise WorkflowError(f"{directory}: {what}; fix it and run the same command again: finished steps are kept")
    return directory


def write_preset(preset: str, samples: Sequence[str], directory: str | Path = ".", *, epochs: int | None = None
                 ) -> Path:
    """Write the sample sheet of ``preset`` (``roadmap``: :func:`~chromoformer.workflow.remote_inputs.roadmap_sheet`)
    for ``samples`` into ``directory``; its path (what :func:`run_workflow` takes)."""
    if preset != "roadmap":
        raise UsageError(f"unknown preset {preset!r}; the one preset is roadmap")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 10_000):
        raise UsageError(f"--epochs must be 1..10000, got {epochs!r}")
    sheet = roadmap_sheet(list(samples), epochs)
    path = WorkflowFiles(Path(directory)).preset_sheet(preset)
    write_text(path, yaml.safe_dump(sheet, sort_keys=False))
    return path


def summary(directory: str | Path = ".") -> list[str]:
    """What a finished workflow made, for a person: per sample (and differential pair) its held-out figure per
    fold and pooled, where its evaluation and predictions are, and a word when pooling the folds gives a figure
    outside the folds' range (scores of different fold models are not on one scale)."""
    files = WorkflowFiles(Path(directory))
    resolved = files.resolved_sheet  # written by run_workflow: the sheet the run used
    if not resolved.is_file():
        raise UsageError(f"{files.dir}: not a workflow directory (no {resolved.name})")
    sheet = check_sheet_values(yaml.safe_load(resolved.read_text()), resolved, check_files=False)
    lines = [f"workflow results in {files.dir.resolve()} (logs/ and benchmarks/ per step)"]
    units = [(s, files.sample(s)) for s in sheet["samples"]]
    units += [(f"pair {n}", files.dir / WorkflowPattern.PAIR.format(pair=n)) for n in map(pair_name,
                                                                                         sheet.get("pairs", []))]
    for name, where in units:
        metrics = where / "evaluation" / EvaluationFiles.METRICS
        if not metrics.is_file():
            lines.append(f"{name}: no evaluation yet ({metrics} is missing)")
            continue
        try:
            lines.append(_held_out_line(name, metrics))
        except ChromoformerError as e:  # a report, not an input: say what is wrong with the table and go on
            lines.append(f"{name}: {e}")
        lines.append(f"  evaluation: {metrics.parent}; predictions of every gene (4-fold ensemble): "
                     f"{where / Path(WorkflowPattern.PREDICTIONS).name}")
    return lines


def _held_out_line(name: str, metrics: Path) -> str:
    """One line of :func:`summary` from an evaluation's metrics.tsv, read like any other table (a fold's metric
    may be NaN: undefined on a one-class fold)."""
    import math

    import pandas as pd

    m = read_table(metrics, EvaluationError, "evaluation table (re-run evaluate)", sep="\t", dtype={"fold": str})
    key = next((k for k in ("auroc", "pearson") if k in m.columns), None)
    if key is None or "fold" not in m.columns or "n" not in m.columns or (m.fold == "pooled").sum() != 1:
        raise EvaluationError(f"{metrics}: not an evaluation table (fold, n, auroc or pearson, one pooled row; "
                              "re-run evaluate)")
    n = numeric_column(m, "n", metrics, EvaluationError, integer=True, minimum=0)
    value = pd.to_numeric(m[key], errors="coerce").to_numpy(dtype=float)
    folds, pooled = (m.fold != "pooled").to_numpy(), (m.fold == "pooled").to_numpy()
    per = ", ".join(f"{f if f.startswith('fold') else f'fold {f}'} {v:.3f}"  # run folders are named foldK
                    for f, v in zip(m.fold[folds], value[folds], strict=True))
    both = float(value[pooled][0])
    line = f"{name}: held-out {key.upper()} {per}; pooled {both:.3f} ({int(n[pooled].iloc[0])} genes)"
    seen = value[folds][~pd.isna(value[folds])]
    if len(seen) and math.isfinite(both) and not seen.min() <= both <= seen.max():
        line += ("; the pooled figure lies outside the folds' range because each fold's model scores on its own "
                 "scale: read the per-fold figures (and calibrate with evaluate --temperature)")
    return line


def _snakemake_log(directory: Path, since: float) -> str:
    """The text of the log snakemake wrote for the run started at ``since`` ('' if none)."""
    logs = sorted((p for p in (directory / ".snakemake" / "log").glob("*.snakemake.log")
                   if p.stat().st_mtime >= since - 1), key=lambda p: p.stat().st_mtime)
    try:
        return logs[-1].read_text(errors="replace") if logs else ""
    except OSError:
        return ""
