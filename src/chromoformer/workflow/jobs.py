"""The environment the workflow starts its model jobs (train, predict) in.

glibc reads ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` when a process starts. A training step
allocates and frees the same 1-30 MB tensors over and over; with both thresholds at 1 GiB the process keeps
that memory instead of taking fresh ``mmap`` pages and giving the heap's top back every step. Two 1-thread
folds at once ran 1.03-1.05x faster so, with the same weights to the bit and the same peak RSS
(``bench/malloc.py``). Only the process's allocator changes, never a number it computes. Other C libraries
ignore the variables; a user's own ``MALLOC_*`` settings are left as they are.

The cluster side of a workflow directory: jobs an interrupted run left in the SLURM queue.

When the snakemake process is killed (not stopped), the jobs it submitted stay queued or keep
running. A new run would submit the same steps again, and two copies of a training job would
write the same run folder, so ``chromoformer workflow`` first looks for them and stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
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
