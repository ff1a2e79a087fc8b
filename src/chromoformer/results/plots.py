"""Matplotlib figures (PNG): training curves, attention heatmaps, attribution tracks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chromoformer.config import default_marks  # noqa: E402
from chromoformer.files.atomic import save_figure


def training_curves(metrics_tsv: str | Path, out: str | Path) -> Path:
    """Loss and the main validation metric per epoch from a run's metrics.tsv."""
    m = pd.read_csv(metrics_tsv, sep="\t")
    key = "auroc" if "val_auroc" in m else "pearson" if "val_call_auroc" in m else "r2"
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(m.epoch, m.train_loss, "o-", label="train")
    a.plot(m.epoch, m.val_loss, "o-", label="validation")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    a.legend()
    b.plot(m.epoch, m[f"val_{key}"], "o-", color="C2", label="validation")
    if f"train_{key}" in m:
        b.plot(m.epoch, m[f"train_{key}"], "o-", color="C0", alpha=0.6, label="train")
    b.set(xlabel="epoch", ylabel=key.upper(), title=key.upper())
    b.legend()
    fig.tight_layout()
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)


def attention_heatmap(table: pd.DataFrame, gene: str, out: str | Path) -> Path:
    """Promoter -> pCRE attention of one gene: one panel per bin size, rows = layer x head."""
    t = table[table.gene_id == gene]
    sizes = sorted(t.binsize.unique(), reverse=True)
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 4), squeeze=False)
    for k, (ax, b) in enumerate(zip(axes[0], sizes, strict=True)):
        p = t[t.binsize == b].pivot_table(index=["layer", "head"], columns="pcre", values="weight")
        im = ax.imshow(p.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set(title=f"{b} bp", xlabel="pCRE (by score)", ylabel="layer (8 heads each)" if k == 0 else "")
        ax.set_xticks(range(p.shape[1]))
        ax.set_yticks(range(0, p.shape[0], 8), [f"L{i}" for i in range(0, p.shape[0] // 8)])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="attention weight")
    fig.suptitle(f"{gene}: promoter token -> pCRE tokens (Regulation transformer)")
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)


def attribution_track(attr: np.ndarray, gene: str, bin_size: int, out: str | Path, *, strand: str = "+",
                      marks: Sequence[str] | None = None) -> Path:
    """(nb, F) promoter attribution per mark (named ``marks``), x = distance to the TSS in transcription
    direction."""
    marks = tuple(marks) if marks is not None else default_marks(attr.shape[1])
    nb = attr.shape[0]
    x = (np.arange(nb) - nb // 2) * bin_size / 1000
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for m in range(attr.shape[1]):
        ax.plot(x, attr[:, m], lw=1, label=marks[m])
    ax.axvline(0, color="k", lw=0.6, ls=":")
    ax.set(xlabel="distance from TSS (kb, transcription direction)", ylabel="attribution (grad x input)",
           title=f"{gene} ({strand}), {bin_size}-bp bins")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)


def difference_bars(summary: pd.DataFrame, gene: str, out: str | Path) -> Path:
    """One gene's attribution of the predicted fold change (``difference.tsv`` rows: cell, region, mark,
    attribution): a bar per mark, cell A's and B's side by side, promoter and pCREs (summed) in two panels."""
    g = summary[summary.gene_id == gene]
    marks = list(dict.fromkeys(g.mark))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    x = np.arange(len(marks))
    for ax, (title, promoter) in zip(axes, (("promoter", True), ("pCREs (summed)", False)), strict=True):
        for k, cell in enumerate(("A", "B")):
            part = g[(g.cell == cell) & ((g.region == "promoter") == promoter)]
            vals = part.groupby("mark").attribution.sum().reindex(marks, fill_value=0.0)
            ax.bar(x + (k - 0.5) * 0.4, vals.to_numpy(), 0.4, label=f"cell {cell}", color=("C0", "C1")[k])
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(x, marks, rotation=40, ha="right", fontsize=8)
        ax.set(title=title)
    axes[0].set(ylabel="attribution to predicted log2 FC")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{gene}: what explains the difference (B vs A)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)


def comparison_plot(per_fold: pd.DataFrame, out: str | Path, reference: dict[str, float] | None = None,
                    title: str = "held-out performance") -> Path:
    """One panel per metric of ``per_fold`` (``model``, ``fold`` and metric columns, as ``compare`` writes
    ``comparison_folds.tsv``): a bar per model at its mean over folds, the sd as an error bar, every fold as a
    dot; ``reference`` draws a dashed line per metric (an oracle's ceiling, say)."""
    metrics = [c for c in per_fold.columns if c not in ("model", "fold")]
    models = list(dict.fromkeys(per_fold.model))
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.2 + 0.55 * len(models) * len(metrics) + 1.5 * len(metrics),
                                                       3.6), squeeze=False)
    for a, m in zip(axes[0], metrics, strict=True):
        groups = [per_fold.loc[per_fold.model == name, m].to_numpy(dtype=float) for name in models]
        x = np.arange(len(models))
        kept = [g[np.isfinite(g)] for g in groups]  # a metric a fold cannot have (no down gene) is NaN there
        a.bar(x, [g.mean() if len(g) else np.nan for g in kept],
              yerr=[g.std(ddof=1) if len(g) > 1 else 0 for g in kept], color="lightsteelblue",
              edgecolor="k", lw=0.5, capsize=3)
        for i, g in enumerate(groups):
            a.plot(np.full(len(g), i) + np.linspace(-0.15, 0.15, len(g)), g, "k.", ms=4)
        if reference and m in reference:
            a.axhline(reference[m], color="C3", ls="--", lw=1, label="oracle")
            a.legend(fontsize=7, loc="lower right")
        a.set_xticks(x, models, rotation=40, ha="right", fontsize=8)
        a.set(ylabel=m, title=m)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)
