"""``chromoformer predict``: metadata + signal + one checkpoint or a fold ensemble -> predictions csv.

For a classifier the csv has ``gene_id, logit_0, logit_1, prediction`` with ``prediction`` = softmax
P(class 1) (``--probability sigmoid`` gives the original demo's sigmoid(logit_1) instead); for a regressor
``gene_id, prediction`` in log2(RPKM + 1). With several checkpoints, logits (or values) are averaged, the
probability is taken of the averaged logits, and the spread over checkpoints is added (``prediction_sd``,
``margin_sd``). ``--temperature`` applies a temperature fitted by ``chromoformer evaluate --temperature``.
A differential (``--task diff``) checkpoint takes cell B's ``--meta-b`` and ``--npy-dir-b`` too and writes
``gene_id, expr_a, expr_b, lfc, call`` (``lfc_sd`` for an ensemble).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from chromoformer.cli import options
from chromoformer.data.marks import parse_mark_map
from chromoformer.diff.prediction import predict_pairs
from chromoformer.errors import UsageError
from chromoformer.files.atomic import writable_output
from chromoformer.files.checked import not_an_input
from chromoformer.files.predictions import write_predictions
from chromoformer.inference.predict import predict
from chromoformer.metrics import DIFF_THRESHOLD
from chromoformer.results.calibration import read_temperature

log = logging.getLogger(__name__)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer predict", description=__doc__)
    options.meta(p)
    options.signal(p)
    options.checkpoints(p, several=True)
    options.output(p, help="output csv")
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
    return p


def run(args: argparse.Namespace) -> None:
    options.check_resources(args)
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"-o {out} is a directory; give the output csv's file name (a file inside it, say)")
    writable_output(out, "predictions")
    not_an_input(out, [args.meta, args.meta_b, *args.checkpoint], folders=[args.npy_dir, args.npy_dir_b, args.store])
    if args.meta_b is not None or args.npy_dir_b is not None:
        options.check_pair(args, "diff", unsupported=("store", "eid", "mark_map", "temperature", "absent_marks"))
        df = predict_pairs(args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.checkpoint,
                           batch_size=args.batch_size, device=args.device, num_workers=args.num_workers,
                           threshold=args.threshold)
        write_predictions(df, out)
        log.info("wrote %d differential predictions to %s", len(df), out)
        return
    df = predict(args.meta, args.npy_dir, args.checkpoint, config=args.config, batch_size=args.batch_size,
                 device=args.device, num_workers=args.num_workers, probability=args.probability, eid=args.eid,
                 store=args.store, mark_map=parse_mark_map(args.mark_map),
                 temperature=read_temperature(args.temperature) if args.temperature is not None else None,
                 absent_marks=args.absent_marks)
    write_predictions(df, out)
    log.info("wrote %d predictions to %s", len(df), out)
