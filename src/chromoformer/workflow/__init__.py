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

from chromoformer.errors import UsageError, WorkflowError
from chromoformer.files.atomic import write_text
from chromoformer.files.layouts import WorkflowFiles
from chromoformer.files.locking import FileLock
from chromoformer.workflow.jobs import describe, leftover_jobs, parse_failures
from chromoformer.workflow.sheet import check_sheet

log = logging.getLogger(__name__)


def snakefile() -> Path:
    return Path(str(resources.files("chromoformer.workflow").joinpath("Snakefile")))


def _unlock_if_stale(directory: Path, cmd: list[str]) -> None:
    """Remove snakemake's lock left by a killed run (only called while we hold our own lock)."""
    locks = directory / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        log.warning("removing the snakemake lock left by an interrupted run in %s", directory)
        subprocess.run([*cmd, "--unlock"], check=False, capture_output=True)


def run_workflow(config: str | Path, directory: str | Path = ".", cores: int | str = "all",
                 snakemake_args: Sequence[str] = ()) -> Path:
    """Check the sample sheet ``config`` and run the packaged Snakefile on it in ``directory``.

    Resumable: finished steps are kept, and a stale lock of a killed run is removed. Returns
    ``directory``; a failing step raises :class:`WorkflowError` naming its log.
    """
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


def _snakemake_log(directory: Path, since: float) -> str:
    """The text of the log snakemake wrote for the run started at ``since`` ('' if none)."""
    logs = sorted((p for p in (directory / ".snakemake" / "log").glob("*.snakemake.log")
                   if p.stat().st_mtime >= since - 1), key=lambda p: p.stat().st_mtime)
    try:
        return logs[-1].read_text(errors="replace") if logs else ""
    except OSError:
        return ""
