"""The cluster side of a workflow directory: jobs an interrupted run left in the SLURM queue.

When the snakemake process is killed (not stopped), the jobs it submitted stay queued or keep
running. A new run would submit the same steps again, and two copies of a training job would
write the same run folder, so ``chromoformer workflow`` first looks for them and stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

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
