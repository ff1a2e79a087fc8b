"""Progress bars on a terminal only: redirected to a log file, stderr gets plain log lines."""

from __future__ import annotations

import functools

from tqdm.auto import tqdm as _tqdm

# disable=None: tqdm turns itself off when its stream is not a TTY (no '\r' frames in logs)
tqdm = functools.partial(_tqdm, disable=None)

__all__ = ["tqdm"]
