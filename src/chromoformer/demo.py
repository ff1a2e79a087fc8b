"""``chromoformer demo``: simulate a small dataset, train one fold, evaluate and predict.

Runs on CPU in about a minute. With ``--reference-demo`` it also predicts the real
Roadmap E003 demo genes with a checkpoint in the original published format.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from chromoformer import predict, train
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.io import write_table
from chromoformer.metrics import classification_metrics

log = logging.getLogger(__name__)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer demo", description=__doc__)
    p.add_argument("-o", "--out", default="chromoformer-demo", help="output directory")
    p.add_argument("--genes", type=int, default=160, help="number of synthetic genes")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--reference-demo", default=None,
                   help="folder with demo_meta.csv, demo_data/ and a checkpoint (*.pt) in the original format")
    return p


def run(args: argparse.Namespace) -> pd.DataFrame:
    out = Path(args.out)
    meta, npy = write_synthetic_dataset(out / "data", n_genes=args.genes, seed=0)
    run_dir = out / "runs" / f"fold{args.fold}"
    targs = train.build_parser().parse_args(
        ["-m", str(meta), "-d", str(npy), "--fold", str(args.fold), "-o", str(run_dir),
         "--epochs", str(args.epochs), "--resume"])
    history = train.run(targs)
    pred = predict.predict(meta, npy, [run_dir / "best.pt"])
    truth = pd.read_csv(meta)
    held = truth.split == train.held_out_split(args.fold)
    merged = pred.merge(truth[["gene_id", "label", "split"]], on="gene_id")
    write_table(merged, out / "predictions.csv")
    m = classification_metrics(merged.prediction[held.values].to_numpy(), merged.label[held.values].to_numpy())
    summary = pd.DataFrame(history)[["epoch", "train_loss", "val_loss", "val_auroc", "val_ap"]]
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"held-out split {train.held_out_split(args.fold)}: AUROC {m['auroc']:.3f}, AP {m['ap']:.3f}, "
          f"accuracy {m['accuracy']:.3f} ({int(held.sum())} genes); predictions in {out / 'predictions.csv'}")
    if args.reference_demo:
        ref = Path(args.reference_demo)
        ckpts = sorted(ref.glob("*.pt"))
        rp = predict.predict(ref / "demo_meta.csv", ref / "demo_data", ckpts)
        write_table(rp, out / "reference_demo_predictions.csv")
        lab = pd.read_csv(ref / "demo_meta.csv").label.to_numpy()
        rm = classification_metrics(rp.prediction.to_numpy(), lab)
        print(f"reference demo ({len(rp)} real genes, {', '.join(c.name for c in ckpts)}): "
              f"AUROC {rm['auroc']:.3f}; predictions in {out / 'reference_demo_predictions.csv'}")
    return merged
