"""Running a command line: logging set-up and one-line errors (shared by ``chromoformer`` and
``python -m chromoformer.train``)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from chromoformer.errors import ChromoformerError, is_no_space, one_line

ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EROFS, errno.ENAMETOOLONG,
                      errno.ELOOP, errno.ENOENT, errno.EEXIST}  # ENOENT: e.g. an output under a missing mount


def fail(msg: str, code: int = 2) -> None:
    """Print ``chromoformer: error: msg`` and exit with ``code``."""
    print(f"chromoformer: error: {msg}", file=sys.stderr)
    sys.exit(code)


def setup_logging(verbose: bool = False) -> None:
    """INFO (DEBUG with ``verbose``) to stderr; under torchrun only rank 0 logs below WARNING."""
    raw = os.environ.get("RANK", "0")
    rank = int(raw) if raw.isdigit() else 0  # checked (with a clear error) where training reads it
    level = logging.DEBUG if verbose else logging.INFO
    fmt = "%(levelname)s %(name)s: %(message)s" if rank == 0 else f"[rank {rank}] %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level if rank == 0 else logging.WARNING, format=fmt)


def run_command(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], Any] | None,
                argv: list[str]) -> None:
    """Parse ``argv`` and run ``func`` (or the parsed ``func`` of a subcommand), mapping user errors,
    a full disk and unwritable paths to one line and exit 2."""
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    try:
        (func or args.func)(args)
    except BrokenPipeError:  # `chromoformer inspect x | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except ChromoformerError as e:
        fail(one_line(e))
    except OSError as e:
        if is_no_space(e):
            where = e.filename or "output"
            fail(f"{where}: no space left on the device ({e.strerror}); free some space and run the command again")
        if e.errno in ENVIRONMENT_ERRNOS and e.filename:  # permissions, read-only disk, a file in the path
            fail(f"{e.filename}: {e.strerror}")
        raise
    except KeyboardInterrupt:
        fail("interrupted", 130)
