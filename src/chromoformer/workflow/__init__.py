"""The workflow: run the packaged Snakefile on a YAML sample sheet (``chromoformer workflow``)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from chromoformer.errors import UsageError, WorkflowError
from chromoformer.files.io import write_text
from chromoformer.files.layouts import WorkflowFiles
from chromoformer.files.locking import FileLock
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
        _unlock_if_stale(directory, cmd)
        rc = subprocess.call([*cmd, "--rerun-incomplete", *snakemake_args])
    if rc:
        raise WorkflowError(f"{directory}: snakemake failed (exit {rc}); see {files.logs} for the failing "
                            f"step's log, fix it and run the same command again: finished steps are kept")
    return directory
