"""One error model for the whole package.

Library code raises a subclass of :class:`ChromoformerError` for every problem with the
user's input, files or environment (never ``SystemExit``); the command line catches it
once and prints ``chromoformer: error: <file>[:<line>]: [<gene or item>: ]<problem>``
with exit code 2. Any other exception escaping to the command line is a bug.

The subclasses also derive from :class:`ValueError` (or :class:`OSError` for disk
space), so code that caught the built-in types keeps working.
"""

from __future__ import annotations

import errno


class ChromoformerError(Exception):
    """A problem with the user's input or environment, reported as one line."""


class UsageError(ChromoformerError, ValueError):
    """An argument or option has an impossible value."""


class ConfigError(ChromoformerError, ValueError):
    """A configuration file or value is malformed."""


class MetadataError(ChromoformerError, ValueError):
    """The metadata csv is malformed."""


class DataError(ChromoformerError, ValueError):
    """Signal data (npy files or a binned store) is missing or malformed."""


class StoreError(DataError):
    """A binned store is incomplete, corrupt or does not fit the run."""


class CheckpointError(ChromoformerError, ValueError):
    """A checkpoint cannot be loaded or does not fit the run."""


class RunError(ChromoformerError, ValueError):
    """A run directory is in use, complete, or in a state that cannot be continued."""


class SignalError(ChromoformerError, ValueError):
    """A signal file (BAM, BED, bigWig) cannot be used."""


class AnnotationError(ChromoformerError, ValueError):
    """A gene annotation cannot be parsed."""


class ExpressionError(ChromoformerError, ValueError):
    """An expression table cannot be used."""


class InteractionError(ChromoformerError, ValueError):
    """An interaction (pcHi-C / Hi-C) table cannot be used."""


class SimulationError(ChromoformerError, RuntimeError):
    """The simulator's inputs are missing."""


class SampleSheetError(ChromoformerError, ValueError):
    """A workflow sample sheet is malformed."""


class WorkflowError(ChromoformerError, RuntimeError):
    """A workflow step failed."""


class FetchError(ChromoformerError, RuntimeError):
    """A remote file cannot be fetched, or what was fetched fails its checks."""


class EvaluationError(ChromoformerError, ValueError):
    """Prediction tables given to ``evaluate`` cannot be pooled."""


class DiskSpaceError(ChromoformerError, OSError):
    """Not enough free space to write an output."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_no_space(e: BaseException) -> bool:
    """True for 'no space left on device', 'disk quota exceeded' and 'file too large'."""
    return isinstance(e, OSError) and e.errno in NO_SPACE


def one_line(e: BaseException) -> str:
    """The message of ``e`` as one line.

    A ChromoformerError raised in a DataLoader worker comes back re-raised with the
    worker's whole traceback as its message; its last line holds the original message.
    """
    msg = str(e)
    if msg.startswith("Caught ") and "Original Traceback" in msg:
        last = [ln for ln in msg.splitlines() if ln.strip()][-1]
        prefix = f"{type(e).__module__}.{type(e).__name__}: "
        msg = last[len(prefix):] if last.startswith(prefix) else last.split(": ", 1)[-1]
    return " ".join(msg.split())
