"""``chromoformer`` command line: a thin layer over the library.

Subcommands: ``train``, ``predict``, ``evaluate``, ``build-store``, ``demo``, ``simulate``,
``preprocess``, ``workflow``, ``export``, ``verify``, ``inspect``.
Errors in user input are printed as one line (``chromoformer: error: ...``), exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from chromoformer import __version__
from chromoformer.entry import run_command


def _build_store(args: argparse.Namespace) -> None:
    from chromoformer.data.store_writer import build_store_from_npy
    from chromoformer.errors import UsageError

    if args.marks and len(args.marks) != args.n_feats:
        raise UsageError(f"--marks names {len(args.marks)} marks but --n-feats is {args.n_feats}")
    from chromoformer.io import not_an_input

    not_an_input(args.out, [args.npy_dir])
    s = build_store_from_npy(args.npy_dir, args.out, base=args.base, n_feats=args.n_feats, marks=args.marks)
    logging.getLogger("chromoformer").info(
        "wrote store %s: %d regions, %d base bins of %d bp", s.path, len(s), s.sums.shape[0], s.base
    )


def _simulate(args: argparse.Namespace) -> None:
    from chromoformer.preprocess.simulate import SimConfig, simulate

    if args.genome_scale:
        from chromoformer.preprocess.simulate_genome import GenomeSimConfig, simulate_genome

        paths = simulate_genome(args.out, GenomeSimConfig(fraction=args.fraction, reads_per_mark=args.reads_per_mark,
                                                          genes=args.genes, seed=args.seed))
    else:
        paths = simulate(args.out, SimConfig(span_mb=args.span_mb, seed=args.seed))
    for k, v in paths.items():
        print(f"{k:<14} {v}")


def _export_weights(args: argparse.Namespace) -> None:
    from chromoformer.checkpoint import export_weights
    from chromoformer.errors import UsageError

    if not str(args.out).endswith(".safetensors"):
        raise UsageError(f"-o {args.out}: the output must end in .safetensors")
    p = export_weights(args.checkpoint, args.out)
    logging.getLogger("chromoformer").info("wrote %s (%.1f MB)", p, p.stat().st_size / 2**20)


def _inspect(args: argparse.Namespace) -> None:
    from chromoformer.checkpoint import load_model

    m = load_model(args.checkpoint)
    ck = m.checkpoint
    n = sum(p.numel() for p in m.model.parameters())
    print(f"checkpoint   {m.path}")
    print(f"task         {m.task} ({type(m.model).__name__}, {n:,} parameters)")
    print(f"bin sizes    {', '.join(map(str, m.binsizes))}")
    print(f"marks        {', '.join(ck['marks']) if ck.get('marks') else 'not stored (original format)'}")
    print(f"config       {'stored' if 'config' in ck else 'default (not stored: original format)'}")
    for k in ("epoch", "fold", "best_epoch", "chromoformer_version"):
        if k in ck:
            print(f"{k:<12} {ck[k]}")
    # the original stores validation AUROC / R2 multiplied by 100
    for k, name in (("last_val_auc", "AUROC"), ("last_val_r2", "R2")):
        if k in ck:
            v = float(ck[k])
            print(f"{k:<12} {v / 100:.3f} (validation {name} at that epoch; stored x100 as {v:.2f})")
    if "last_val_loss" in ck:
        print(f"last_val_loss {float(ck['last_val_loss']):.4f}")


# (name, module with build_parser/run, help): a module is imported only when its command runs
SUBCOMMANDS = [
    ("train", "chromoformer.train", "train one cross-validation fold"),
    ("predict", "chromoformer.predict", "predict genes with one checkpoint or a fold ensemble"),
    ("evaluate", "chromoformer.evaluate", "pool the folds' held-out predictions: metrics and ROC/scatter plots"),
    ("compare", "chromoformer.compare", "train Chromoformer, its ablations and the baselines on the same folds"),
    ("interpret", "chromoformer.interpret", "attention, in-silico perturbation and attributions for chosen genes"),
    ("report", "chromoformer.report", "HTML page of a run: training curves, ROC/PR or scatter, tables"),
    ("demo", "chromoformer.demo", "simulate, preprocess, train, evaluate and predict on CPU"),
    ("workflow", "chromoformer.workflow", "run the snakemake workflow on a sample sheet"),
    ("export", "chromoformer.export", "predictions, pCRE links and attributions as bigWig/bedGraph/bedpe/interact"),
    ("verify", "chromoformer.verify", "recompute a checkpoint's stored validation metrics and re-predict its scores"),
]
HELP = argparse.ArgumentDefaultsHelpFormatter


def _wanted(argv: list[str] | None) -> str | None:
    """The subcommand named on the command line (None for ``--help``, ``--version``, nothing)."""
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    import importlib

    p = argparse.ArgumentParser(prog="chromoformer", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"chromoformer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    wanted = _wanted(argv)
    for name, module, text in SUBCOMMANDS:
        sp = sub.add_parser(name, help=text, description=text, formatter_class=HELP)
        if name == wanted:
            mod = importlib.import_module(module)
            mod.build_parser(sp)
            sp.set_defaults(func=mod.run)

    if wanted == "preprocess":
        from chromoformer.preprocess.cli import add_parsers

        add_parsers(sub)
    else:
        sub.add_parser("preprocess", help="preprocessing steps (annotation, labels, interactions, signals)")

    b = sub.add_parser("build-store", help="convert an npy directory into a binned store", formatter_class=HELP)
    b.add_argument("-d", "--npy-dir", required=True, help="directory of the original chrom:start-end.npy files")
    b.add_argument("-o", "--out", required=True, help="store directory to write")
    b.add_argument("--base", type=int, default=100, help="base bin (bp); every bin size must be a multiple")
    b.add_argument("--n-feats", type=int, default=7, help="number of marks (rows) in each npy file")
    b.add_argument("--marks", nargs="+", default=None,
                   help="names of the npy rows, in order (default: the paper's 7 marks, or mark1..markN)")
    b.set_defaults(func=_build_store)


    sm = sub.add_parser("simulate", help="write a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression)",
                        formatter_class=HELP)
    sm.add_argument("-o", "--out", required=True, help="output directory")
    sm.add_argument("--span-mb", type=float, default=60.0, help="Mb of real chr11 mark layout to use")
    sm.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    sm.add_argument("--genome-scale", action="store_true",
                    help="a whole hg19 genome: real TSSs, 23 chromosomes, ~19,000 genes, 25 M reads per mark")
    sm.add_argument("--fraction", type=float, default=1.0, help="--genome-scale: this share of every chromosome")
    sm.add_argument("--reads-per-mark", type=int, default=25_000_000, help="--genome-scale: reads per mark at "
                    "fraction 1")
    sm.add_argument("--genes", type=int, default=19_000, help="--genome-scale: genes at fraction 1")
    sm.set_defaults(func=_simulate)

    x = sub.add_parser("export-weights", help="a checkpoint's weights and run spec as .safetensors (for sharing)",
                       formatter_class=HELP)
    x.add_argument("checkpoint", help="a .pt checkpoint")
    x.add_argument("-o", "--out", required=True, help="output .safetensors file")
    x.set_defaults(func=_export_weights)

    i = sub.add_parser("inspect", help="describe a checkpoint (ours or the original format)", formatter_class=HELP)
    i.add_argument("checkpoint", help="a .pt checkpoint")
    i.set_defaults(func=_inspect)
    return p


def main(argv: list[str] | None = None) -> None:
    """Run a subcommand; user errors print one line and exit 2 (an interrupt exits 130)."""
    args = sys.argv[1:] if argv is None else argv
    run_command(build_parser(args), None, args)


if __name__ == "__main__":
    main()
