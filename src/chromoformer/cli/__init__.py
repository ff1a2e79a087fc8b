"""``chromoformer`` command line: a thin layer over the library.

One table of subcommands (:data:`SUBCOMMANDS`); each names the module holding its ``build_<command>_parser`` and
``run_<command>``,
imported only when that command runs, so ``chromoformer --help`` stays fast. Errors in user input are printed as
one line (``chromoformer: error: ...``), exit code 2.

:func:`run_command`: logging set-up and one-line errors (shared by ``chromoformer`` and
``python -m chromoformer.train``).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from chromoformer import __version__
from chromoformer.cli import options
from chromoformer.cli.options import HelpFormatter
from chromoformer.errors import ChromoformerError, is_no_space, one_line

# (name, module, build_parser, run, help)
SUBCOMMANDS = [
    ("train", "chromoformer.cli.train", "build_train_parser", "run_train", "train one cross-validation fold"),
    ("predict", "chromoformer.cli.checkpoints", "build_predict_parser", "run_predict",
     "predict genes with one checkpoint or a fold ensemble"),
    ("evaluate", "chromoformer.cli.results", "build_evaluate_parser", "run_evaluate",
     "pool the folds' held-out predictions: metrics and ROC/scatter plots"),
    ("compare", "chromoformer.cli.train", "build_compare_parser", "run_compare",
     "train Chromoformer, its ablations and the baselines on the same folds"),
    ("interpret", "chromoformer.cli.results", "build_interpret_parser", "run_interpret",
     "attention, in-silico perturbation and attributions for chosen genes"),
    ("report", "chromoformer.cli.results", "build_report_parser", "run_report",
     "HTML page of a run: training curves, ROC/PR or scatter, tables"),
    ("demo", "chromoformer.cli.workflow", "build_demo_parser", "run_demo",
     "simulate, preprocess, train, evaluate and predict on CPU"),
    ("workflow", "chromoformer.cli.workflow", "build_workflow_parser", "run_workflow",
     "run the snakemake workflow on a sample sheet"),
    ("preprocess", "chromoformer.cli.data", "build_preprocess_parser", "run_preprocess",
     "preprocessing steps (annotation, labels, interactions, signals)"),
    ("export", "chromoformer.cli.results", "build_export_parser", "run_export",
     "predictions, pCRE links and attributions as bigWig/bedGraph/bedpe/interact"),
    ("verify", "chromoformer.cli.checkpoints", "build_verify_parser", "run_verify",
     "recompute a checkpoint's stored validation metrics and re-predict its scores"),
    ("build-store", "chromoformer.cli.data", "build_store_parser", "run_store",
     "convert an npy directory into a binned store"),
    ("simulate", "chromoformer.cli.data", "build_simulate_parser", "run_simulate",
     "write a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression)"),
    ("export-weights", "chromoformer.cli.checkpoints", "build_export_weights_parser", "run_export_weights",
     "a checkpoint's weights and run spec as .safetensors (for sharing)"),
    ("inspect", "chromoformer.cli.checkpoints", "build_inspect_parser", "run_inspect",
     "describe a checkpoint (ours or the original format)"),
    ("pretrained", "chromoformer.cli.checkpoints", "build_pretrained_parser", "run_pretrained",
     "the published checkpoints by name: list, fetch, add, table"),
]


def command_help(name: str) -> str:
    """The one-line description of subcommand ``name`` (:data:`SUBCOMMANDS`), for a parser built on its own."""
    return next(text for n, *_, text in SUBCOMMANDS if n == name)


def _wanted(argv: list[str] | None) -> str | None:
    """The subcommand named on the command line (None for ``--help``, ``--version``, nothing)."""
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chromoformer", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"chromoformer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    wanted = _wanted(argv)
    for name, module, build, run, text in SUBCOMMANDS:
        sp = sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter)
        if name == wanted:
            mod = importlib.import_module(module)
            getattr(mod, build)(sp)
            sp.set_defaults(func=getattr(mod, run))
    return p


def main(argv: list[str] | None = None) -> None:
    """Run a subcommand; user errors print one line and exit 2 (an interrupt exits 130)."""
    args = sys.argv[1:] if argv is None else argv
    check_working_directory()
    try:
        parser = build_parser(args)  # imports the command's module (torch with it)
    except (MemoryError, ImportError) as e:
        if (line := _out_of_memory(e)) is None:
            raise
        fail(line)
    run_command(parser, None, args)


if __name__ == "__main__":
    main()


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


class Stopped(BaseException):
    """SIGTERM or SIGHUP reached the command: unwinds like an interrupt (temp files removed, locks released)."""


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def _worker_failure(e: BaseException) -> str | None:
    """The one line of an error a DataLoader worker raised or died of (torch re-raises it with the worker's
    traceback, or says the worker was killed), else None."""
    text = str(e)
    if text.startswith("Caught ") and "DataLoader worker" in text.split("\n", 1)[0]:
        return f"while reading the input data: {one_line(e)}"
    if isinstance(e, RuntimeError) and "DataLoader worker" in text and ("killed" in text or "exited" in text):
        return (f"a data-loading worker process stopped ({' '.join(text.split())[:200]}); run the command again "
                "(--num-workers 0 reads in the main process)")
    return None


def _out_of_memory(e: BaseException) -> str | None:
    """One line for an allocation that failed (host or GPU), else None."""
    text = " ".join(str(e).split())
    if isinstance(e, ImportError) and "failed to map segment" not in text and "cannot allocate" not in text.lower():
        return None  # a missing package, not memory
    if isinstance(e, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower() \
            or "failed to map segment" in text or "cannot allocate memory" in text.lower():
        return (f"out of memory ({text[:160] or type(e).__name__}): this command needed more memory than this "
                "process may use (free memory, ulimit -v, the GPU's); lower --batch-size, the config's bsz or "
                "its model sizes")
    return None


def _start_resource_tracker_ignoring_hangups() -> None:
    """Start multiprocessing's resource tracker (shared by the loader's workers, and by joblib) with SIGHUP
    ignored, as it already ignores SIGINT and SIGTERM: a hangup of the process group would kill it, and the
    relaunched tracker prints a traceback for every semaphore it never saw. The ignored disposition survives its
    exec; the command's own handler is installed after."""
    from multiprocessing import resource_tracker

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    except OSError:  # no tracker (a restricted environment): the loader starts one when it needs it
        pass
    finally:
        signal.signal(signal.SIGHUP, previous)


def check_working_directory() -> None:
    """A working directory that was deleted under the shell is one line here, before torch (whose oneMKL aborts
    on it) is imported."""
    try:
        os.getcwd()
    except FileNotFoundError:
        fail("the current working directory no longer exists (deleted?); cd to an existing folder and run again")


def run_command(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], Any] | None,
                argv: list[str]) -> None:
    """Parse ``argv`` and run ``func`` (or the parsed ``func`` of a subcommand), mapping user errors,
    a full disk, unwritable paths, exhausted memory, a data worker's failure and SIGTERM/SIGHUP to one line and
    exit 2 (128 + the signal for a signal)."""
    check_working_directory()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers belong to the main thread
        _start_resource_tracker_ignoring_hangups()
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _run(args, func)
    finally:  # a command run in-process (a test, a notebook) leaves the caller's handlers as they were
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, func: Callable[[argparse.Namespace], Any] | None) -> None:
    """Run the command, mapping what it raises to one line (see :func:`run_command`)."""
    try:
        options.expand_pretrained(args)
        (func or args.func)(args)
    except BrokenPipeError:  # `chromoformer inspect x | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except ChromoformerError as e:
        fail(one_line(e))
    except OSError as e:
        if (line := _worker_failure(e)) is not None:
            fail(line)
        if is_no_space(e):
            where = e.filename or "output"
            fail(f"{where}: no space left on the device ({e.strerror}); free some space and run the command again")
        if e.errno in ENVIRONMENT_ERRNOS and e.filename:  # permissions, read-only disk, a file in the path
            fail(f"{e.filename}: {e.strerror}")
        raise
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Stopped as e:
        fail(f"stopped by {signal.Signals(e.args[0]).name}; the outputs written so far are whole (a training run "
             "resumes with --resume)", 128 + e.args[0])
    except (MemoryError, RuntimeError, ImportError) as e:  # ImportError: a library that could not be mapped
        line = _worker_failure(e) if not isinstance(e, ImportError) else None
        line = line or _out_of_memory(e)
        if line is None:
            raise
        fail(line)
