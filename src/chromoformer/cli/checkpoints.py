"""``chromoformer predict``: metadata + signal + one checkpoint or a fold ensemble -> predictions csv.

For a classifier the csv has ``gene_id, logit_0, logit_1, prediction`` with ``prediction`` = softmax
P(class 1) (``--probability sigmoid`` gives the original demo's sigmoid(logit_1) instead); for a regressor
``gene_id, prediction`` in log2(RPKM + 1). With several checkpoints, logits (or values) are averaged, the
probability is taken of the averaged logits, and the spread over checkpoints is added (``prediction_sd``,
``margin_sd``). ``--temperature`` applies a temperature fitted by ``chromoformer evaluate --temperature``.
A differential (``--task diff``) checkpoint takes cell B's ``--meta-b`` and ``--npy-dir-b`` too and writes
``gene_id, expr_a, expr_b, lfc, call`` (``lfc_sd`` for an ensemble).

``chromoformer verify``: recompute a checkpoint's stored validation metrics and re-predict its scores.

Prints a table of checks and exits 1 when one does not hold.

``chromoformer inspect`` (describe a checkpoint) and ``chromoformer export-weights`` (weights and run spec as
``.safetensors``).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from chromoformer.cli import command_help, options
from chromoformer.data.marks import parse_mark_map
from chromoformer.diff.prediction import pair_prediction_check, predict_pairs
from chromoformer.errors import UsageError
from chromoformer.files.atomic import writable_output
from chromoformer.files.checked import not_an_input
from chromoformer.files.frames import table_format
from chromoformer.files.predictions import write_predictions
from chromoformer.inference.predict import predict
from chromoformer.inference.verify import format_report, verify
from chromoformer.metrics import DIFF_THRESHOLD
from chromoformer.results.evaluate import read_temperature

log = logging.getLogger(__name__)


def build_predict_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer predict", description=command_help("predict"))
    options.meta(p)
    options.signal(p)
    options.checkpoints(p, several=True)
    options.output(p, help="output table; its suffix picks the format: .csv (any other suffix too), .parquet "
                   "(the same columns) or .h5ad (AnnData: genes x statistics, with chrom, tss, strand, split)")
    options.config(p, help="config YAML (default: from the checkpoint)")
    options.store(p)
    p.add_argument("--probability", choices=("softmax", "sigmoid"), default="softmax",
                   help="classifier probability; 'sigmoid' = the original demo's sigmoid(logit_1)")
    p.add_argument("--temperature", default=None, metavar="T_OR_JSON",
                   help="classifier: divide the logits by this temperature, a number or the temperature.json "
                        "that 'chromoformer evaluate --temperature' fits on held-out folds")
    p.add_argument("--absent-marks", nargs="+", default=(), metavar="MARK",
                   help="the checkpoint's marks not measured: predict without them (models trained with "
                        "mark_dropout > 0 only)")
    options.pair(p)
    p.add_argument("--threshold", type=float, default=DIFF_THRESHOLD,
                   help="differential model: |log2 fold change| of an up/down call")
    options.eid(p)
    options.mark_map(p)
    options.resources(p)
    options.precision(p)
    return p


def run_predict(args: argparse.Namespace) -> None:
    runtime = options.runtime(args)
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"-o {out} is a directory; give the output csv's file name (a file inside it, say)")
    writable_output(out, "predictions")
    not_an_input(out, [args.meta, args.meta_b, *args.checkpoint], folders=[args.npy_dir, args.npy_dir_b, args.store])
    if args.meta_b is not None or args.npy_dir_b is not None:
        options.check_pair(args, "diff", unsupported=("store", "eid", "mark_map", "temperature", "absent_marks"))
        df = predict_pairs(args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.checkpoint,
                           runtime=runtime, threshold=args.threshold)
        write_predictions(df, out, genes=_annotation(args.meta, out))
        log.info("wrote %d differential predictions to %s", len(df), out)
        return
    df = predict(args.meta, args.npy_dir, args.checkpoint, config=args.config, runtime=runtime,
                 probability=args.probability, eid=args.eid,
                 store=args.store, mark_map=parse_mark_map(args.mark_map),
                 temperature=read_temperature(args.temperature) if args.temperature is not None else None,
                 absent_marks=args.absent_marks)
    write_predictions(df, out, genes=_annotation(args.meta, out, args.eid))
    log.info("wrote %d predictions to %s", len(df), out)


def _annotation(meta: str, out: Path, eid: str | None = None):
    """The genes' chrom, TSS, strand and split for an h5ad's observations (None for the other formats)."""
    if table_format(out) != "h5ad":
        return None
    from chromoformer.data.metadata import gene_table, read_metadata

    return gene_table(read_metadata(meta, i_max=10**6, w_max=10**9, eid=eid))  # read already, checked by predict


def build_verify_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer verify", description=command_help("verify"))
    options.checkpoints(p, several=True, positional=True)
    options.meta(p, required=False, help="metadata csv of the fold (enables re-prediction)")
    options.signal(p, required=False)
    p.add_argument("--fold", type=int, choices=range(5), default=None, metavar="{0..4}",
                   help="the checkpoint's fold (default: stored, or 'foldN' in the file name)")
    p.add_argument("--metric-tol", type=float, default=1e-4, help="largest |stored - recomputed| metric")
    p.add_argument("--score-tol", type=float, default=1e-4, help="largest |val_score - re-predicted| score")
    options.pair(p)
    options.resources(p, workers=False)
    return p


def run_verify(args: argparse.Namespace) -> None:
    for name, tol in (("--metric-tol", args.metric_tol), ("--score-tol", args.score_tol)):
        if not (math.isfinite(tol) and tol >= 0):
            raise UsageError(f"{name} must be a finite number >= 0, got {tol}")
    runtime = options.runtime(args)
    checkpoints = options.checkpoint_list(args, several=True)
    pair = args.meta_b is not None or args.npy_dir_b is not None
    if pair:  # a differential checkpoint: its re-prediction reads both cells
        options.check_pair(args, "diff")
        if args.meta is None or args.npy_dir is None:
            raise UsageError("re-predicting a differential checkpoint needs cell A's -m and -d with --meta-b and "
                             "--npy-dir-b")
    checks = verify(checkpoints, meta=None if pair else args.meta, signal=None if pair else args.npy_dir,
                    fold=args.fold, metric_tol=args.metric_tol, score_tol=args.score_tol, runtime=runtime)
    if pair:
        checks += [pair_prediction_check(c, args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, fold=args.fold,
                                         score_tol=args.score_tol, runtime=runtime) for c in checkpoints]
    print(format_report(checks))
    failed = [c for c in checks if c.ok is False]
    if failed:
        print(f"chromoformer verify: {len(failed)} check(s) do not hold", file=sys.stderr)
        sys.exit(1)


log = logging.getLogger(__name__)


def build_inspect_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    options.checkpoints(p, several=False, positional=True)
    return p


def run_inspect(args: argparse.Namespace) -> None:
    from chromoformer.engine.checkpoint import Key
    from chromoformer.engine.loading import load_model

    m = load_model(options.checkpoint_list(args, several=False)[0])
    ck, st = m.checkpoint, m.stored
    n = sum(p.numel() for p in m.model.parameters())
    print(f"checkpoint   {m.path}")
    print(f"task         {m.task} ({type(m.model).__name__}, {n:,} parameters)")
    print(f"bin sizes    {', '.join(map(str, m.binsizes))}")
    print(f"marks        {', '.join(ck[Key.MARKS]) if ck.get(Key.MARKS) else 'not stored (original format)'}")
    print(f"config       {'stored' if Key.CONFIG in ck else 'default (not stored: original format)'}")
    print(f"precision    {ck.get(Key.PRECISION, 'fp32')} (trained in)")
    if m.spec.parent:  # the lineage of a fine-tuned model
        print(f"parent       {m.spec.parent} (fine-tuned from it; frozen: {', '.join(m.spec.freeze) or 'nothing'})")
    for k in (Key.EPOCH, Key.FOLD, Key.BEST_EPOCH):
        if getattr(st, k) is not None:
            print(f"{k:<12} {getattr(st, k)}")
    if isinstance(ck.get(Key.VERSION), str):
        print(f"{'version':<12} {ck[Key.VERSION]!r}")
    # the original stores validation AUROC / R2 multiplied by 100
    for k, name in ((Key.LAST_VAL_AUC, "AUROC"), (Key.LAST_VAL_R2, "R2"),
                    (Key.LAST_VAL_PEARSON, "Pearson r of the fold change")):
        v = getattr(st, k)
        if v is not None:
            print(f"{k:<12} {v / 100:.3f} (validation {name} at that epoch; stored x100 as {v:.2f})")
    if st.last_val_loss is not None:
        print(f"last_val_loss {st.last_val_loss:.4f}")


def build_export_weights_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    options.checkpoints(p, several=False, positional=True)
    options.output(p, help="output .safetensors file")
    return p


def run_export_weights(args: argparse.Namespace) -> None:
    from chromoformer.engine.loading import export_weights

    if not str(args.output).endswith(".safetensors"):
        raise UsageError(f"-o {args.output}: the output must end in .safetensors")
    p = export_weights(options.checkpoint_list(args, several=False)[0], args.output)
    log.info("wrote %s (%.1f MB)", p, p.stat().st_size / 2**20)


def build_pretrained_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the published checkpoints: EID, task, fold, size, md5, cached or not")
    f = sub.add_parser("fetch", help="download (once), check and cache an EID's published checkpoints")
    f.add_argument("eid", help="Roadmap epigenome ID, e.g. E003")
    f.add_argument("--task", choices=("clf", "reg"), default="clf", help="classifier (default) or regressor")
    f.add_argument("--fold", type=int, choices=(1, 2, 3, 4), default=None, help="one fold (default: all four)")
    a = sub.add_parser("add", help="register a published checkpoint (or archive) downloaded by hand")
    a.add_argument("file", help="the .pt (or the per-EID archive) as downloaded; its md5 must match the listing")
    t = sub.add_parser("table", help="validation metrics recomputed from each cached checkpoint, and per EID pooled")
    t.add_argument("eids", nargs="*", help="EIDs (default: every cached one)")
    t.add_argument("-o", "--output", default=None, help="also write the table as tsv")
    return p


def run_pretrained(args: argparse.Namespace) -> None:
    from chromoformer.engine import pretrained
    from chromoformer.files.atomic import write_table
    from chromoformer.results.published import published_list, published_table

    if args.action == "list":
        t = published_list()
        t["size"] = t["size"].map(lambda n: f"{n / 2**20:,.1f} MB")
        print(t.drop(columns=["name"]).to_string(index=False))
    elif args.action == "fetch":
        for p in pretrained.select(args.eid, args.task, args.fold):
            print(pretrained.fetch_published(p))
    elif args.action == "add":
        print(pretrained.add(args.file))
    else:
        t = published_table(args.eids or None)
        if t.empty:
            raise UsageError("no published checkpoint is cached" + (f" for {', '.join(args.eids)}" if args.eids else "")
                             + ": chromoformer pretrained fetch EID")
        if args.output:
            write_table(t, args.output, sep="\t", float_format="%.6f")
        print(t.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))
