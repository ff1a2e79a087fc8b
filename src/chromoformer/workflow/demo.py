"""The demo: simulate, preprocess, train, evaluate and predict, on CPU (``chromoformer demo``).

Full path (default when snakemake and Debian's chromhmm-example are installed): a read-level simulation (BAMs,
GTF, pcHi-C, expression) goes through the snakemake workflow (genes -> metadata -> binned store -> 4 folds ->
pooled held-out evaluation with ROC/PR plots, every gene predicted with the 4-fold ensemble); the demo reads
its results back (one predictions file: the workflow's). Otherwise
(or with ``quick``) a small synthetic npy dataset trains one fold in-process. With ``reference_demo`` the real
Roadmap E003 demo genes are also predicted with a checkpoint in the original published format.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from chromoformer.config import MARKS
from chromoformer.data.folds import FOLDS, held_out_split
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.errors import EvaluationError, RunError, UsageError
from chromoformer.files.atomic import write_table
from chromoformer.files.checked import read_table
from chromoformer.files.layouts import DemoFiles, RunPaths, WorkflowFiles
from chromoformer.files.predictions import read_predictions, write_predictions
from chromoformer.inference.predict import predict
from chromoformer.metrics import classification_metrics
from chromoformer.spec import RunSpec
from chromoformer.training.fit import train_fold

log = logging.getLogger(__name__)
SAMPLE = "SIM"


@dataclass
class DemoResult:
    """What the demo made: its predictions, and the summary a person reads (tables and sentences)."""

    predictions: pd.DataFrame
    summary: list[str] = field(default_factory=list)


def _fmt(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def demo(out: str | Path, *, genes: int = 160, epochs: int = 6, fold: int = 1, quick: bool = False,
         span_mb: float = 40.0, cores: str = "2", reference_demo: str | Path | None = None) -> DemoResult:
    """Run the demo into ``out`` (see the module docstring); the workflow path unless ``quick`` or its tools are
    missing."""
    from chromoformer.preprocess.simulate import CHROMHMM

    if genes < 8 or epochs < 1 or fold not in (0, *FOLDS):
        raise UsageError(f"--genes must be >= 8 (two per split), --epochs >= 1 and --fold one of 0..4; got {genes}, "
                         f"{epochs} and {fold}")
    full = not quick and shutil.which("snakemake") and (CHROMHMM / "SAMPLEDATA_HG18").is_dir()
    if not quick and not full:
        log.warning("snakemake or chromhmm-example missing: running the quick in-process demo instead")
    res = workflow_demo(out, epochs=epochs, span_mb=span_mb, cores=cores) if full else quick_demo(
        out, genes=genes, epochs=epochs, fold=fold)
    if reference_demo:
        res.summary.append(predict_reference(Path(reference_demo), Path(out)))
    return res


def workflow_demo(out: str | Path, *, epochs: int = 6, span_mb: float = 40.0, cores: str = "2") -> DemoResult:
    import yaml

    from chromoformer.files.atomic import write_text
    from chromoformer.preprocess.simulate import SimConfig, simulate
    from chromoformer.workflow import run_workflow

    files = DemoFiles(Path(out).resolve())
    paths = simulate(files.dir / "sim", SimConfig(span_mb=span_mb))
    sheet = {"annotation": str(paths["gtf"]), "chrom_sizes": str(paths["sizes"]),
             "expression": str(paths["expression"]),
             "samples": {SAMPLE: {"interactions": str(paths["pchic"]), "expression_column": SAMPLE,
                                  "signals": {m: str(paths[f"bam_{m}"]) for m in MARKS}}},
             "train": {"epochs": epochs, "extra": "--num-workers 0"}}
    write_text(files.sheet, yaml.safe_dump(sheet, sort_keys=False))
    wf = WorkflowFiles(files.dir / "results")
    run_workflow(files.sheet, directory=wf.dir, cores=cores, snakemake_args=["--quiet", "rules"])
    metrics = read_table(wf.evaluation(SAMPLE).metrics, EvaluationError, "evaluation metrics", sep="\t")
    pred = read_predictions(wf.predictions(SAMPLE))  # the workflow's predict step already ran the ensemble
    return DemoResult(pred, [
        _fmt(metrics), _fmt(fold_summary([wf.run(SAMPLE, f) for f in FOLDS])),
        "best.pt of a fold is its epoch with the highest validation AUROC (threshold-free ranking); accuracy "
        "thresholds P(expressed) at 0.5, so an epoch can rank genes well while calling most of them expressed: "
        "compare AUROC/AP across runs, and read accuracy with the last epoch beside it.",
        f"held-out metrics and ROC/PR plot: {wf.evaluation(SAMPLE).dir}; 4-fold ensemble predictions of "
        f"{len(pred)} genes: {wf.predictions(SAMPLE)}"])


def fold_summary(runs: list[RunPaths]) -> pd.DataFrame:
    """Per fold: the selected (best-AUROC) epoch and the last epoch, threshold-free and thresholded metrics."""
    rows = []
    for r in runs:
        m = read_table(r.metrics, RunError, "training metrics", sep="\t")
        best, last = m.loc[m.val_auroc.idxmax()], m.iloc[-1]
        rows.append({"fold": r.run_dir.name, "best_epoch": int(best.epoch), "best_auroc": best.val_auroc,
                     "best_accuracy": best.val_accuracy, "last_epoch": int(last.epoch),
                     "last_auroc": last.val_auroc, "last_accuracy": last.val_accuracy})
    return pd.DataFrame(rows)


def quick_demo(out: str | Path, *, genes: int = 160, epochs: int = 6, fold: int = 1) -> DemoResult:
    files = DemoFiles(Path(out))
    meta, npy = write_synthetic_dataset(files.dir / "data", n_genes=genes, seed=0)
    run = RunPaths.from_output(files.dir / "runs" / f"fold{fold}")
    history = train_fold(RunSpec().replace(num_epoch=epochs), meta, npy, fold, run.run_dir, resume=True)
    pred = predict(meta, npy, [run.best])
    truth = pd.read_csv(meta)
    held = truth.split == held_out_split(fold)
    merged = pred.merge(truth[["gene_id", "label", "split"]], on="gene_id")
    write_table(merged, files.predictions)
    m = classification_metrics(merged.prediction[held.values].to_numpy(), merged.label[held.values].to_numpy())
    summary = pd.DataFrame(history)[["epoch", "train_loss", "val_loss", "val_auroc", "val_ap"]]
    return DemoResult(merged, [
        _fmt(summary),
        f"held-out split {held_out_split(fold)}: AUROC {m['auroc']:.3f}, AP {m['ap']:.3f}, accuracy "
        f"{m['accuracy']:.3f} ({int(held.sum())} genes); predictions in {files.predictions}"])


def predict_reference(ref: Path, out: Path) -> str:
    """Predict the real demo genes with the checkpoint(s) in ``ref`` (original published format); one summary
    line."""
    files = DemoFiles(out)
    ckpts = sorted(ref.glob("*.pt"))
    rp = predict(DemoFiles.reference_meta(ref), DemoFiles.reference_signal(ref), ckpts)
    write_predictions(rp, files.reference_predictions)
    lab = pd.read_csv(DemoFiles.reference_meta(ref)).label.to_numpy()
    rm = classification_metrics(rp.prediction.to_numpy(), lab)
    return (f"reference demo ({len(rp)} real genes, {', '.join(c.name for c in ckpts)}): AUROC {rm['auroc']:.3f}; "
            f"predictions in {files.reference_predictions}. This checks that real data and a checkpoint in the "
            "published format load and predict; the shared checkpoint's weights were deliberately perturbed, so "
            "its AUROC says nothing about biology (fetch the published checkpoints for that)")
