"""``chromoformer`` command line: a thin layer over the library.

Subcommands: ``train``, ``predict``, ``evaluate``, ``build-store``, ``demo``, ``simulate``,
``preprocess``, ``workflow``, ``inspect``.
Errors in user input are printed as one line (``chromoformer: error: ...``), exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from chromoformer import __version__
from chromoformer.errors import ChromoformerError, is_no_space, one_line


def _build_store(args: argparse.Namespace) -> None:
    from chromoformer.data.store import build_store_from_npy

    s = build_store_from_npy(args.npy_dir, args.out, base=args.base, n_feats=args.n_feats)
    logging.getLogger("chromoformer").info(
        "wrote store %s: %d regions, %d base bins of %d bp", s.path, len(s), s.sums.shape[0], s.base
    )


def _simulate(args: argparse.Namespace) -> None:
    from chromoformer.preprocess.simulate import SimConfig, simulate

    paths = simulate(args.out, SimConfig(span_mb=args.span_mb, seed=args.seed))
    for k, v in paths.items():
        print(f"{k:<14} {v}")


def _inspect(args: argparse.Namespace) -> None:
    from chromoformer.checkpoint import load_model

    m = load_model(args.checkpoint)
    ck = m.checkpoint
    n = sum(p.numel() for p in m.model.parameters())
    print(f"checkpoint   {m.path}")
    print(f"task         {m.task} ({type(m.model).__name__}, {n:,} parameters)")
    print(f"bin sizes    {', '.join(map(str, m.binsizes))}")
    print(f"config       {'stored' if 'config' in ck else 'default (not stored: original format)'}")
    for k in ("epoch", "fold", "last_val_auc", "last_val_r2", "best_epoch", "chromoformer_version"):
        if k in ck:
            print(f"{k:<12} {ck[k]}")


def build_parser() -> argparse.ArgumentParser:
    from chromoformer import compare, demo, evaluate, interpret, predict, report, train, workflow

    p = argparse.ArgumentParser(prog="chromoformer", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"chromoformer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    modules = [  # (name, module with build_parser/run, help)
        ("train", train, "train one cross-validation fold"),
        ("predict", predict, "predict genes with one checkpoint or a fold ensemble"),
        ("evaluate", evaluate, "pool the folds' held-out predictions: metrics and ROC/scatter plots"),
        ("compare", compare, "train Chromoformer, its ablations and the baselines on the same folds"),
        ("interpret", interpret, "attention, in-silico perturbation and attributions for chosen genes"),
        ("report", report, "HTML page of a run: training curves, ROC/PR or scatter, tables"),
        ("demo", demo, "simulate, preprocess, train, evaluate and predict on CPU"),
        ("workflow", workflow, "run the snakemake workflow on a sample sheet"),
    ]
    for name, module, text in modules:
        sp = sub.add_parser(name, help=text)
        module.build_parser(sp)
        sp.set_defaults(func=module.run)

    from chromoformer.preprocess.cli import add_parsers

    add_parsers(sub)

    b = sub.add_parser("build-store", help="convert an npy directory into a binned store")
    b.add_argument("-d", "--npy-dir", required=True)
    b.add_argument("-o", "--out", required=True)
    b.add_argument("--base", type=int, default=100, help="base bin (bp); every bin size must be a multiple")
    b.add_argument("--n-feats", type=int, default=7)
    b.set_defaults(func=_build_store)


    sm = sub.add_parser("simulate", help="write a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression)")
    sm.add_argument("-o", "--out", required=True)
    sm.add_argument("--span-mb", type=float, default=60.0, help="Mb of real chr11 mark layout to use")
    sm.add_argument("--seed", type=int, default=0)
    sm.set_defaults(func=_simulate)

    i = sub.add_parser("inspect", help="describe a checkpoint (ours or the original format)")
    i.add_argument("checkpoint")
    i.set_defaults(func=_inspect)
    return p


def _fail(msg: str, code: int = 2) -> None:
    print(f"chromoformer: error: {msg}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run a subcommand; user errors print one line and exit 2 (an interrupt exits 130)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        args.func(args)
    except ChromoformerError as e:
        _fail(one_line(e))
    except OSError as e:
        if not is_no_space(e):
            raise
        where = e.filename or "output"
        _fail(f"{where}: no space left on the device ({e.strerror}); free some space and run the command again")
    except KeyboardInterrupt:
        _fail("interrupted", 130)


if __name__ == "__main__":
    main()
