"""The workflow's jobs: the environment model jobs start in, the jobs a killed run left queued, and what failed.

:func:`model_job_env`: the environment the workflow starts its model jobs (train, predict) in.

glibc reads ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` when a process starts. A training step
allocates and frees the same 1-30 MB tensors over and over; with both thresholds at 1 GiB the process keeps
that memory instead of taking fresh ``mmap`` pages and giving the heap's top back every step. Two 1-thread
folds at once ran 1.03-1.05x faster so, with the same weights to the bit and the same peak RSS
(``bench/malloc.py``). Only the process's allocator changes, never a number it computes. Other C libraries
ignore the variables; a user's own ``MALLOC_*`` settings are left as they are.

:func:`leftover_jobs`: the cluster side of a workflow directory: jobs an interrupted run left in the SLURM queue.

When the snakemake process is killed (not stopped), the jobs it submitted stay queued or keep
running. A new run would submit the same steps again, and two copies of a training job would
write the same run folder, so ``chromoformer workflow`` first looks for them and stops.

:func:`parse_failures` and :func:`describe`: what failed in a snakemake run, read back from snakemake's own log,
as one line for the user.

Snakemake writes one block per job it starts (``rule NAME:`` or ``localrule NAME:``) and one per
failed job (``Error in rule NAME:``), each followed by indented ``key: value`` lines (``jobid``,
``wildcards``, ``log``, ``message``...). Under the SLURM executor the failure block has no
``wildcards``: they are taken from the start block of the same ``jobid``. Its ``log`` line also names
the scheduler's log (e.g. ``.snakemake/slurm_logs/rule_X/SAMPLE/123.log``). A job retried and failed
again appears twice; the last block counts.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GLIBC_THRESHOLDS = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def model_job_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with :data:`GLIBC_THRESHOLDS` added, unless it sets any ``MALLOC_`` variable itself."""
    env = dict(environ)
    if not any(k.startswith("MALLOC_") for k in env):
        env.update(GLIBC_THRESHOLDS)
    return env


log = logging.getLogger(__name__)


def leftover_jobs(directory: str | Path) -> list[str]:
    """SLURM job ids of this user's queued or running jobs whose working directory is ``directory``.

    Empty where there is no SLURM (no ``squeue``) or it does not answer within 20 s.
    """
    exe = shutil.which("squeue")
    if exe is None:
        return []
    try:
        r = subprocess.run([exe, "--me", "-h", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED",
                            "-o", "%i|%Z"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.debug("squeue did not answer: %s", e)
        return []
    if r.returncode != 0:
        log.debug("squeue failed: %s", r.stderr.strip()[:200])
        return []
    here = os.path.realpath(directory)
    jobs = []
    for line in r.stdout.splitlines():
        job, _, wd = line.partition("|")
        if wd and os.path.realpath(wd) == here:
            jobs.append(job.strip())
    return jobs


_BLOCK = re.compile(r"^(Error in rule|rule|localrule) (\w+):\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")
_OUR_ERROR = re.compile(r"^chromoformer: error: (.*)$")


@dataclass(frozen=True)
class Failure:
    """One failed job: its rule, wildcards (``sample=S, mark=M``), log files and snakemake's message."""

    rule: str
    wildcards: str = ""
    logs: tuple[str, ...] = ()
    message: str = ""


def parse_failures(text: str) -> list[Failure]:
    """The failed jobs of a snakemake log ``text``, each (rule, wildcards) once, in order of last failure."""
    found: dict[tuple[str, str], Failure] = {}
    started: dict[str, str] = {}  # jobid -> wildcards of the job's start block
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _BLOCK.match(lines[i])
        i += 1
        if not m:
            continue
        fields: dict[str, str] = {}
        while i < len(lines) and (f := _FIELD.match(lines[i])):
            fields.setdefault(f.group(1), f.group(2).strip())
            i += 1
        jobid = fields.get("jobid", "")
        if m.group(1) != "Error in rule":
            started[jobid] = fields.get("wildcards", "")
            continue
        logs = fields.get("log", "").split(" (check log file(s)")[0]
        failure = Failure(m.group(2), fields.get("wildcards") or started.get(jobid, ""),
                          tuple(x.strip() for x in logs.split(",") if x.strip()), fields.get("message", ""))
        key = (failure.rule, failure.wildcards)
        found.pop(key, None)
        found[key] = failure
    return list(found.values())


def first_error(log: Path) -> str | None:
    """The ``chromoformer: error:`` line a step wrote to its log (its cause), if any."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if m := _OUR_ERROR.match(line.strip()):
            return m.group(1)
    return None


def describe(failures: list[Failure], directory: Path) -> str:
    """One line: the first failed step (rule, wildcards), its cause, its log and the scheduler's log."""
    f = failures[0]
    where = f"step {f.rule}" + (f" ({f.wildcards})" if f.wildcards else "")
    ours = [x for x in f.logs if not Path(x).is_absolute() or ".snakemake" not in Path(x).parts]
    theirs = [x for x in f.logs if x not in ours]
    cause = next((c for x in ours if (c := first_error(directory / x))), None)
    text = f"{where} failed" + (f": {cause}" if cause else (f": {f.message}" if f.message else ""))
    if ours:
        text += f"; log {directory / ours[0]}"
    if theirs:
        text += f"; scheduler log {theirs[0]}"
    if len(failures) > 1:
        text += f"; and {len(failures) - 1} more failed step(s)"
    return " ".join(text.split())
