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
from chromoformer.checkpoint import CheckpointError
from chromoformer.config import ConfigError
from chromoformer.data import DataError, MetadataError
from chromoformer.preprocess.coverage import SignalError
from chromoformer.preprocess.genes import AnnotationError
from chromoformer.preprocess.interactions import InteractionError
from chromoformer.preprocess.labels import ExpressionError
from chromoformer.preprocess.simulate import SimulationError

USER_ERRORS = (CheckpointError, ConfigError, DataError, MetadataError, SignalError, AnnotationError,
               InteractionError, ExpressionError, SimulationError)


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

    t = sub.add_parser("train", help="train one cross-validation fold")
    train.build_parser(t)
    t.set_defaults(func=train.run)

    q = sub.add_parser("predict", help="predict genes with one checkpoint or a fold ensemble")
    predict.build_parser(q)
    q.set_defaults(func=predict.run)

    b = sub.add_parser("build-store", help="convert an npy directory into a binned store")
    b.add_argument("-d", "--npy-dir", required=True)
    b.add_argument("-o", "--out", required=True)
    b.add_argument("--base", type=int, default=100, help="base bin (bp); every bin size must be a multiple")
    b.add_argument("--n-feats", type=int, default=7)
    b.set_defaults(func=_build_store)

    d = sub.add_parser("demo", help="simulate a small dataset, train, evaluate and predict (CPU, ~1 min)")
    demo.build_parser(d)
    d.set_defaults(func=demo.run)

    from chromoformer.preprocess.cli import add_parsers

    add_parsers(sub)

    sm = sub.add_parser("simulate", help="write a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression)")
    sm.add_argument("-o", "--out", required=True)
    sm.add_argument("--span-mb", type=float, default=60.0, help="Mb of real chr11 mark layout to use")
    sm.add_argument("--seed", type=int, default=0)
    sm.set_defaults(func=_simulate)

    e = sub.add_parser("evaluate", help="pool the folds' held-out predictions: metrics and ROC/scatter plots")
    evaluate.build_parser(e)
    e.set_defaults(func=evaluate.run)

    c = sub.add_parser("compare", help="train Chromoformer, its ablations and the baselines on the same folds")
    compare.build_parser(c)
    c.set_defaults(func=compare.run)

    ip = sub.add_parser("interpret", help="attention, in-silico perturbation and attributions for chosen genes")
    interpret.build_parser(ip)
    ip.set_defaults(func=interpret.run)

    rp = sub.add_parser("report", help="HTML page of a run: training curves, ROC/PR or scatter, tables")
    report.build_parser(rp)
    rp.set_defaults(func=report.run)

    w = sub.add_parser("workflow", help="run the snakemake workflow on a sample sheet")
    workflow.build_parser(w)
    w.set_defaults(func=workflow.run)

    i = sub.add_parser("inspect", help="describe a checkpoint (ours or the original format)")
    i.add_argument("checkpoint")
    i.set_defaults(func=_inspect)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        args.func(args)
    except USER_ERRORS as e:
        print(f"chromoformer: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
