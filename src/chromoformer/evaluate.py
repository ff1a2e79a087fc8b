"""Out-of-fold evaluation: every fold's ``val_predictions.csv`` -> metrics table and plots.

Each gene is predicted by the model that did not train on it, so pooling the folds'
validation predictions gives the whole-genome held-out performance (the paper's protocol).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from chromoformer.io import write_table  # noqa: E402
from chromoformer.metrics import classification_metrics, regression_metrics  # noqa: E402

log = logging.getLogger(__name__)


def load_runs(paths: Sequence[str | Path]) -> pd.DataFrame:
    frames = []
    for p in paths:
        d = pd.read_csv(p)
        frames.append(d.assign(fold=Path(p).parent.name))
    return pd.concat(frames, ignore_index=True)


def is_classification(df: pd.DataFrame) -> bool:
    return pd.api.types.is_integer_dtype(df.label) and set(df.label.unique()) <= {0, 1}


def evaluate(paths: Sequence[str | Path], out: str | Path) -> pd.DataFrame:
    """Write ``metrics.tsv`` (per fold and pooled) and ``roc_pr.png`` or ``scatter.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = load_runs(paths)
    clf = is_classification(df)
    fn = classification_metrics if clf else regression_metrics
    rows = [{"fold": f, "n": len(g), **fn(g.score.to_numpy(), g.label.to_numpy())} for f, g in df.groupby("fold")]
    rows.append({"fold": "pooled", "n": len(df), **fn(df.score.to_numpy(), df.label.to_numpy())})
    metrics = pd.DataFrame(rows)
    if clf:
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
        for f, g in [*df.groupby("fold"), ("pooled", df)]:
            fpr, tpr, _ = roc_curve(g.label, g.score)
            pr, rc, _ = precision_recall_curve(g.label, g.score)
            m = metrics.set_index("fold").loc[f]
            lw = 2.5 if f == "pooled" else 1
            a.plot(fpr, tpr, lw=lw, label=f"{f} (AUROC {m.auroc:.3f})")
            b.plot(rc, pr, lw=lw, label=f"{f} (AP {m.ap:.3f})")
        a.plot([0, 1], [0, 1], "k:", lw=0.8)
        a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (held-out genes)")
        b.set(xlabel="recall", ylabel="precision", title="precision-recall")
        a.legend(fontsize=7)
        b.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "roc_pr.png", dpi=120)
    else:
        fig, a = plt.subplots(figsize=(4.5, 4.5))
        a.scatter(df.label, df.score, s=4, alpha=0.5)
        lim = [min(df.label.min(), df.score.min()), max(df.label.max(), df.score.max())]
        a.plot(lim, lim, "k:", lw=0.8)
        m = metrics.iloc[-1]
        a.set(xlabel="observed log2(RPKM + 1)", ylabel="predicted",
              title=f"held-out genes: r = {m.pearson:.3f}, R2 = {m.r2:.3f}")
        fig.tight_layout()
        fig.savefig(out / "scatter.png", dpi=120)
    plt.close("all")
    write_table(metrics, out / "metrics.tsv", sep="\t", float_format="%.4f")
    write_table(df, out / "oof_predictions.csv")
    return metrics


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer evaluate", description=__doc__)
    p.add_argument("--runs", nargs="+", required=True, help="val_predictions.csv of each fold")
    p.add_argument("--out", required=True, help="output directory")
    return p


def run(args: argparse.Namespace) -> None:
    m = evaluate(args.runs, args.out)
    print(m.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
