"""The environment the workflow starts its model jobs (train, predict) in.

glibc reads ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` when a process starts. A training step
allocates and frees the same 1-30 MB tensors over and over; with both thresholds at 1 GiB the process keeps
that memory instead of taking fresh ``mmap`` pages and giving the heap's top back every step. Two 1-thread
folds at once ran 1.03-1.05x faster so, with the same weights to the bit and the same peak RSS
(``bench/malloc.py``). Only the process's allocator changes, never a number it computes. Other C libraries
ignore the variables; a user's own ``MALLOC_*`` settings are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

GLIBC_THRESHOLDS = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def model_job_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with :data:`GLIBC_THRESHOLDS` added, unless it sets any ``MALLOC_`` variable itself."""
    env = dict(environ)
    if not any(k.startswith("MALLOC_") for k in env):
        env.update(GLIBC_THRESHOLDS)
    return env
