"""Fault injection for the crash-consistency tests.

``CHROMOFORMER_FAULT=SITE[:N]`` makes the process kill itself with SIGKILL the N-th time
(default: the first) it reaches :func:`fault_point` ``(SITE)``. Sites are named after
what has just happened, e.g. ``train.epoch_committed`` or ``store.region_written``.
Unset (always, outside tests), a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def fault_point(site: str) -> None:
    """SIGKILL this process here if ``CHROMOFORMER_FAULT`` names ``site`` (and this is hit N)."""
    spec = os.environ.get("CHROMOFORMER_FAULT")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name != site:
        return
    _hits[site] += 1
    if _hits[site] == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)
