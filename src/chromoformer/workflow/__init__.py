"""``chromoformer workflow``: run the packaged Snakefile on a YAML sample sheet."""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from chromoformer.errors import UsageError, WorkflowError
from chromoformer.io import write_text
from chromoformer.locking import FileLock
from chromoformer.workflow.sheet import check_sheet

log = logging.getLogger(__name__)


def snakefile() -> Path:
    return Path(str(resources.files("chromoformer.workflow").joinpath("Snakefile")))


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer workflow", description=__doc__)
    p.add_argument("--config", help="sample sheet YAML (see docs/workflow.md)")
    p.add_argument("--directory", default=".", help="working directory for all outputs")
    p.add_argument("--cores", default="all", help="cores snakemake may use ('all' = every core)")
    p.add_argument("--print-snakefile", action="store_true", help="print the Snakefile path and exit")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after '--': passed to snakemake")
    return p


def _unlock_if_stale(directory: Path, cmd: list[str]) -> None:
    """Remove snakemake's lock left by a killed run (only called while we hold our own lock)."""
    locks = directory / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        log.warning("removing the snakemake lock left by an interrupted run in %s", directory)
        subprocess.run([*cmd, "--unlock"], check=False, capture_output=True)


def run(args: argparse.Namespace) -> None:
    if args.print_snakefile:
        print(snakefile())
        return
    if not args.config:
        raise UsageError("chromoformer workflow: --config is required")
    run_workflow(args.config, args.directory, args.cores, [a for a in args.snakemake_args if a != "--"])


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
    resolved = directory / "samples.resolved.yaml"  # the sheet with absolute paths: what snakemake reads
    write_text(resolved, yaml.safe_dump(sheet, sort_keys=False))
    cmd = [exe, "-s", str(snakefile()), "--configfile", str(resolved.resolve()),
           "--directory", str(directory), "--cores", str(cores)]
    # Our lock proves no other `chromoformer workflow` runs here, so a snakemake lock is stale.
    with FileLock(directory / ".chromoformer-workflow.lock", f"workflow directory {directory}"):
        _unlock_if_stale(directory, cmd)
        rc = subprocess.call([*cmd, "--rerun-incomplete", *snakemake_args])
    if rc:
        raise WorkflowError(f"{directory}: snakemake failed (exit {rc}); see {directory / 'logs'} for the failing "
                            f"step's log, fix it and run the same command again: finished steps are kept")
    return directory
