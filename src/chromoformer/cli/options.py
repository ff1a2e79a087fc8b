"""Shared flag groups: each flag has one definition, one spelling and one default across every command.

Old spellings stay accepted as hidden aliases (``--out`` for ``-o/--output``, a positional checkpoint for
``-k/--checkpoint``): they parse as before but do not appear in ``--help``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from chromoformer.config import MAX_EPOCHS
from chromoformer.errors import UsageError

if TYPE_CHECKING:  # torch is imported by the commands that compute, never by --help
    from chromoformer.engine.runtime import Runtime

HIDDEN = {"--out"}  # accepted, never shown


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, once: added where the help does not state one itself and there is one to show (no
    "(default: None)"); hidden aliases left out."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default in (None, argparse.SUPPRESS, False) or action.nargs == 0:
            return text
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [s for s in action.option_strings if s not in HIDDEN]
        if shown == action.option_strings or not shown:
            return super()._format_action_invocation(action)
        copy = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar)
        copy.default, copy.choices, copy.type = action.default, action.choices, action.type
        return super()._format_action_invocation(copy)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The same, with a multi-line description kept as written (``python -m chromoformer.train --help``)."""


def workers_arg(value: str) -> int | None:
    """``--num-workers``: a count, or ``auto`` (None: see :func:`chromoformer.data.loader.auto_workers`)."""
    if value == "auto":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def meta(p: argparse.ArgumentParser, required: bool = True, help: str = "metadata csv") -> None:
    p.add_argument("-m", "--meta", required=required, default=None, help=help)


def signal(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-d", "--npy-dir", required=required, default=None,
                   help="signal: the original npy directory or a binned store")


def output(p: argparse.ArgumentParser, help: str, required: bool = True, default: str | None = None) -> None:
    p.add_argument("-o", "--output", "--out", dest="output", required=required, default=default, help=help)


def checkpoints(p: argparse.ArgumentParser, several: bool, positional: bool = False) -> None:
    """``-k/--checkpoint`` (repeatable when ``several``); ``positional`` keeps the old ``COMMAND file.pt`` form."""
    help = ("checkpoint .pt (ours or the original format), or a published one: pretrained:EID[/reg][/foldK]"
            + ("; repeat for a fold ensemble (pretrained:E003 is all four folds)" if several else ""))
    if positional:
        p.add_argument("checkpoint_args", nargs="*", metavar="CHECKPOINT", help=argparse.SUPPRESS)
        p.add_argument("-k", "--checkpoint", action="append", default=None, help=help)
    elif several:
        p.add_argument("-k", "--checkpoint", action="append", required=True, help=help)
    else:
        p.add_argument("-k", "--checkpoint", required=True, help=help)


def expand_pretrained(args: argparse.Namespace) -> None:
    """Replace every ``pretrained:...`` checkpoint argument by its cached files (fetched once); a command that
    takes one checkpoint must be given a reference to one (``/foldK``)."""
    for attr in ("checkpoint", "checkpoint_args", "init_from"):
        value = getattr(args, attr, None)
        refs = [value] if isinstance(value, str) else list(value or [])
        if not any(isinstance(r, str) and r.startswith("pretrained:") for r in refs):
            continue
        from chromoformer.engine.pretrained import resolve_checkpoints

        paths = [str(p) for p in resolve_checkpoints(refs)]
        if isinstance(value, str):
            if len(paths) != 1:
                raise UsageError(f"{value} names {len(paths)} checkpoints and this command takes one: add /foldK "
                                 f"(e.g. {value}/fold1)")
            paths = paths[0]
        setattr(args, attr, paths)


def checkpoint_list(args: argparse.Namespace, several: bool) -> list[str]:
    """The checkpoints named by ``-k`` and the old positional form together (at least one; one unless several)."""
    found = [*(getattr(args, "checkpoint_args", None) or []), *(args.checkpoint or [])]
    if not found:
        raise UsageError("a checkpoint is required: -k/--checkpoint FILE.pt")
    if not several and len(found) > 1:
        raise UsageError(f"one checkpoint is taken, got {len(found)}: {', '.join(found)} (a pretrained:EID reference "
                         "names every fold: add /foldK)")
    return found


def config(p: argparse.ArgumentParser, help: str = "config YAML (default: the packaged default.yaml)") -> None:
    p.add_argument("-c", "--config", default=None, help=help)


def store(p: argparse.ArgumentParser, help: str = "binned store to read instead of the npy files") -> None:
    p.add_argument("--store", default=None, help=help)


def eid(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eid", default=None, help="keep only metadata rows of this eid")


def epochs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=None, help=f"override num_epoch of the config (1..{MAX_EPOCHS:,})")


def regression(p: argparse.ArgumentParser) -> None:
    """``--task`` and its older spelling ``--regression`` (= ``--task reg``); read them with :func:`task_of`."""
    p.add_argument("--task", choices=("clf", "reg", "diff"), default=None,
                   help="clf: expressed or not; reg: log2(RPKM+1); diff: the log2 fold change "
                        "log2((RPKM_B+1)/(RPKM_A+1)) between two cells (-m/-d are cell A's, --meta-b/--npy-dir-b "
                        "cell B's) (default: clf)")
    p.add_argument("--regression", action="store_true", help="regress log2(RPKM+1): the same as --task reg")


def task_of(args: argparse.Namespace) -> str:
    """The task of ``--task`` / ``--regression``; they must not disagree."""
    if args.regression and args.task not in (None, "reg"):
        raise UsageError(f"--regression means --task reg, but --task {args.task} is given too; keep one")
    return "reg" if args.regression else args.task or "clf"


def pair(p: argparse.ArgumentParser) -> None:
    """Cell B's inputs of the differential task (cell A's are ``-m`` and ``-d``)."""
    p.add_argument("--meta-b", default=None, help="--task diff: cell B's metadata csv (the same genes as -m)")
    p.add_argument("--npy-dir-b", default=None, help="--task diff: cell B's signal (npy directory or binned store)")


def check_pair(args: argparse.Namespace, task: str, unsupported: tuple[str, ...] = ()) -> None:
    """``--meta-b``/``--npy-dir-b`` are needed with ``--task diff`` and refused without it; options the
    differential task does not take (``unsupported``, dests) are refused with it."""
    given = [f for f, v in (("--meta-b", args.meta_b), ("--npy-dir-b", args.npy_dir_b)) if v is not None]
    if task != "diff" and given:
        raise UsageError(f"{' and '.join(given)} name cell B of the differential task: add --task diff")
    if task == "diff":
        missing = [f for f, v in (("--meta-b", args.meta_b), ("--npy-dir-b", args.npy_dir_b)) if v is None]
        if missing:
            raise UsageError(f"--task diff compares two cells: give cell B's {' and '.join(missing)} (-m and -d "
                             "are cell A's)")
        bad = [u for u in unsupported if getattr(args, u, None)]
        if bad:
            raise UsageError(f"--task diff does not take --{bad[0].replace('_', '-')} (yet); drop it")


def protocol(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=("original", "chromoformer"), default="original",
                   help="how a baseline is trained: 'original' = its own code's recipe (DeepChrome: SGD 1e-3, batch 1, "
                        "lr decay 1e-7; AttentiveChrome: Adam 2e-4, batch 16, clip 1, U(-0.1, 0.1) init; HM-CRNN: "
                        "Adam 1e-3, batch 16, focal loss; GC-MERGE: Adam 1e-4, last epoch kept; DeepDiff: Adam 1e-4, "
                        "batch 10, clip 1; docs/models.md), 'chromoformer' = Chromoformer's (AdamW, the config's lr, "
                        "bsz and decay, cross-entropy/MSE); Chromoformer itself always uses its own "
                        "(default: original)")


def mark_map(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mark-map", nargs="+", default=None, metavar="MODEL_MARK=STORE_MARK",
                   help="read a store mark under the model's name for it, or 'by-name' to pick the model's marks "
                        "from the store by name (needed when they differ in order or names)")


def resources(p: argparse.ArgumentParser, batch_size: bool = True, workers: bool = True) -> None:
    """``--device`` (and ``--batch-size``, ``--num-workers``)."""
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    if batch_size:
        p.add_argument("--batch-size", type=int, default=64, help="genes per batch")
    if workers:
        p.add_argument("--num-workers", type=workers_arg, default="auto", metavar="N|auto",
                       help="DataLoader worker processes; auto (the default): one per spare core, at most 4, for a "
                            "loop of 16 batches or more, none for a shorter one")


def precision(p: argparse.ArgumentParser) -> None:
    from chromoformer.engine.precision import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="arithmetic of the forward passes: fp32 (exact; every equivalence with the original holds), "
                        "bf16 (CPU or CUDA, faster, ~3 significant digits) or fp16 (CUDA only, with loss scaling)")


def loggers(p: argparse.ArgumentParser) -> None:
    from chromoformer.engine.trackers import TRACKERS

    p.add_argument("--logger", dest="loggers", action="append", choices=TRACKERS, default=None, metavar="NAME",
                   help=f"log each epoch to an experiment tracker, offline, under the run's trackers/ folder; "
                        f"repeatable; one of {', '.join(TRACKERS)} (default: none; metrics.tsv is always written)")
    p.add_argument("--use-wandb", action="store_true", help="the original's flag: the same as --logger wandb")


def parquet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parquet", action="store_true",
                   help="also write each table as .parquet beside its .tsv/.csv (needs pyarrow)")


def runtime(args: argparse.Namespace) -> Runtime:
    """The command line's :class:`~chromoformer.engine.runtime.Runtime` (``--device``, ``--num-workers``,
    ``--threads``, ``--batch-size``), checked once here; an impossible ``--epochs`` is an error too."""
    epochs = getattr(args, "epochs", None)
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise UsageError(f"--epochs must be >= 1 (at most {MAX_EPOCHS:,}), got {epochs}")
    from chromoformer.engine.runtime import Runtime

    given = {k: getattr(args, k) for k in ("device", "num_workers", "threads", "batch_size", "precision")
             if hasattr(args, k)}
    if hasattr(args, "loggers"):
        names = list(args.loggers or [])
        if getattr(args, "use_wandb", False) and "wandb" not in names:
            names.append("wandb")
        given["loggers"] = tuple(names)
    return Runtime(**given)
