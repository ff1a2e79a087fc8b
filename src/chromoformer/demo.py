"""``chromoformer demo``: simulate, preprocess, train, evaluate and predict, on CPU.

Full path (default when snakemake and Debian's chromhmm-example are installed): a
read-level simulation (BAMs, GTF, pcHi-C, expression) goes through the snakemake
workflow (genes -> metadata -> binned store -> 4 folds -> pooled held-out evaluation with
ROC/PR plots), then every gene is predicted with the 4-fold ensemble. Otherwise (or with
``--quick``) a small synthetic npy dataset trains one fold in-process. With
``--reference-demo`` the real Roadmap E003 demo genes are also predicted with a
checkpoint in the original published format.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from chromoformer import predict, train
from chromoformer.config import MARKS
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.io import write_table
from chromoformer.metrics import classification_metrics
from chromoformer.spec import RunSpec

log = logging.getLogger(__name__)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer demo", description=__doc__)
    p.add_argument("-o", "--out", default="chromoformer-demo", help="output directory")
    p.add_argument("--genes", type=int, default=160, help="number of synthetic genes (--quick)")
    p.add_argument("--epochs", type=int, default=6, help="epochs per fold")
    p.add_argument("--fold", type=int, default=1, help="fold trained by --quick")
    p.add_argument("--quick", action="store_true", help="in-process synthetic npy demo, no snakemake")
    p.add_argument("--span-mb", type=float, default=40.0, help="simulated genome size (full path)")
    p.add_argument("--cores", default="2", help="cores for the snakemake workflow")
    p.add_argument("--reference-demo", default=None,
                   help="folder with demo_meta.csv, demo_data/ and a checkpoint (*.pt) in the original format")
    return p


def run(args: argparse.Namespace) -> pd.DataFrame:
    import shutil

    from chromoformer.preprocess.simulate import CHROMHMM

    full = not args.quick and shutil.which("snakemake") and (CHROMHMM / "SAMPLEDATA_HG18").is_dir()
    if not args.quick and not full:
        log.warning("snakemake or chromhmm-example missing: running the quick in-process demo instead")
    res = run_workflow_demo(args) if full else run_quick(args)
    if args.reference_demo:
        predict_reference(Path(args.reference_demo), Path(args.out))
    return res


def run_workflow_demo(args: argparse.Namespace) -> pd.DataFrame:
    import yaml

    from chromoformer.preprocess.simulate import SimConfig, simulate
    from chromoformer.workflow import run_workflow

    out = Path(args.out).resolve()
    paths = simulate(out / "sim", SimConfig(span_mb=args.span_mb))
    sheet = {"annotation": str(paths["gtf"]), "chrom_sizes": str(paths["sizes"]),
             "expression": str(paths["expression"]),
             "samples": {"SIM": {"interactions": str(paths["pchic"]), "expression_column": "SIM",
                                 "signals": {m: str(paths[f"bam_{m}"]) for m in MARKS}}},
             "train": {"epochs": args.epochs, "extra": "--num-workers 0"}}
    (out / "samples.yaml").write_text(yaml.safe_dump(sheet, sort_keys=False))
    run_workflow(out / "samples.yaml", out / "results", args.cores, ["--quiet", "rules"])
    res = out / "results" / "SIM"
    metrics = pd.read_csv(res / "evaluation" / "metrics.tsv", sep="\t")
    ckpts = [res / "runs" / f"fold{f}" / "best.pt" for f in (1, 2, 3, 4)]
    pred = predict.predict(res / "meta.csv", res / "store", ckpts)
    write_table(pred, out / "predictions.csv")
    print(metrics.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(fold_summary(res / "runs").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("best.pt of a fold is its epoch with the highest validation AUROC (threshold-free ranking); accuracy "
          "thresholds P(expressed) at 0.5, so an epoch can rank genes well while calling most of them expressed: "
          "compare AUROC/AP across runs, and read accuracy with the last epoch beside it.")
    print(f"held-out metrics and ROC/PR plot: {res / 'evaluation'}; 4-fold ensemble predictions of "
          f"{len(pred)} genes: {out / 'predictions.csv'}")
    return pred


def fold_summary(runs: Path) -> pd.DataFrame:
    """Per fold: the selected (best-AUROC) epoch and the last epoch, threshold-free and thresholded metrics."""
    rows = []
    for d in sorted(runs.glob("fold*")):
        m = pd.read_csv(d / "metrics.tsv", sep="\t")
        best, last = m.loc[m.val_auroc.idxmax()], m.iloc[-1]
        rows.append({"fold": d.name, "best_epoch": int(best.epoch), "best_auroc": best.val_auroc,
                     "best_accuracy": best.val_accuracy, "last_epoch": int(last.epoch),
                     "last_auroc": last.val_auroc, "last_accuracy": last.val_accuracy})
    return pd.DataFrame(rows)


def run_quick(args: argparse.Namespace) -> pd.DataFrame:
    out = Path(args.out)
    meta, npy = write_synthetic_dataset(out / "data", n_genes=args.genes, seed=0)
    run_dir = out / "runs" / f"fold{args.fold}"
    history = train.train_fold(RunSpec().replace(num_epoch=args.epochs), meta, npy, args.fold, run_dir, resume=True)
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
    return merged


def predict_reference(ref: Path, out: Path) -> None:
    """Predict the real demo genes with the checkpoint(s) in ``ref`` (original published format)."""
    ckpts = sorted(ref.glob("*.pt"))
    rp = predict.predict(ref / "demo_meta.csv", ref / "demo_data", ckpts)
    write_table(rp, out / "reference_demo_predictions.csv")
    lab = pd.read_csv(ref / "demo_meta.csv").label.to_numpy()
    rm = classification_metrics(rp.prediction.to_numpy(), lab)
    print(f"reference demo ({len(rp)} real genes, {', '.join(c.name for c in ckpts)}): "
          f"AUROC {rm['auroc']:.3f}; predictions in {out / 'reference_demo_predictions.csv'}")
