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


def attention_heatmap(table: pd.DataFrame, gene: str, out: str | Path, pcre_labels: Sequence[str] = ()) -> Path:
    """Promoter token -> pCRE attention of one gene (``attention.tsv`` rows): one panel per bin size, a row per
    layer, a column per pCRE (named ``pcre_labels``), each cell the mean over the heads with its value written
    in; the colour scale spans this gene's values (the weights of 1 + n tokens sum to 1 per head)."""
    t = table[table.gene_id == gene]
    sizes = sorted(t.binsize.unique(), reverse=True)
    mean = t.groupby(["binsize", "layer", "pcre"]).weight.mean()
    lo, hi = float(mean.min()), float(mean.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.05, hi + 0.05
    n_pcres, heads = int(t.pcre.max()) + 1, int(t["head"].max()) + 1
    fig, axes = plt.subplots(1, len(sizes), figsize=(1.8 + (0.9 + 0.55 * n_pcres) * len(sizes), 3.8),
                             squeeze=False, sharey=True)
    for ax, b in zip(axes[0], sizes, strict=True):
        p = mean.loc[b].unstack("pcre")
        im = ax.imshow(p.to_numpy(), aspect="auto", cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
        for (i, j), v in np.ndenumerate(p.to_numpy()):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="k" if v > lo + 0.6 * (hi - lo) else "w")
        ax.set_title(f"{b}-bp bins", fontsize=9)
        names = [pcre_labels[j] if j < len(pcre_labels) else f"pCRE {j}" for j in p.columns]
        ax.set_xticks(range(p.shape[1]), names, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(p.shape[0]), [f"layer {i}" for i in p.index], fontsize=7)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label=f"attention, mean of {heads} heads")
    fig.suptitle(f"{gene}: the promoter token's attention to each pCRE (Regulation transformer); colour scale "
                 f"{lo:.2f}-{hi:.2f},\nthis gene's range (1 = all of a head's attention on that pCRE)", fontsize=8,
                 y=1.06)
    save_figure(fig, out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(out)


def attribution_track(promoter: np.ndarray, gene: str, bin_size: int, out: str | Path, *, strand: str = "+",
                      marks: Sequence[str] | None = None, pcres: np.ndarray | None = None,
                      pcre_labels: Sequence[str] = (), prediction: str = "") -> Path:
    """One gene's attributions: ``promoter`` (nb, F) per mark, one row each on its own symmetric scale (x = the
    distance to the TSS in the direction of transcription; red raises the score, blue lowers it), and beside
    them ``pcres`` (n_pcres, F), each pCRE's attribution summed over its bins and the bin sizes (named
    ``pcre_labels``). ``prediction`` goes into the title."""
    marks = tuple(marks) if marks is not None else default_marks(promoter.shape[1])
    nb, n_marks = promoter.shape
    x = (np.arange(nb) - nb // 2) * bin_size / 1000
    side = pcres is not None and len(pcres) > 0
    fig = plt.figure(figsize=(9.5 if side else 7.5, 0.62 * n_marks + 1.6))
    grid = fig.add_gridspec(n_marks, 2 if side else 1, width_ratios=[3, 1.3] if side else [1], hspace=0.15,
                            wspace=0.45)
    for m in range(n_marks):
        ax = fig.add_subplot(grid[m, 0])
        v = promoter[:, m]
        ax.fill_between(x, 0, np.maximum(v, 0), step="mid", color="C3", lw=0)  # one polygon, not a bar per bin
        ax.fill_between(x, 0, np.minimum(v, 0), step="mid", color="C0", lw=0)
        ax.axvline(0, color="k", lw=0.5, ls=":")
        ax.axhline(0, color="0.6", lw=0.4)
        row = float(np.abs(v).max()) or 1.0
        ax.set_ylim(-1.1 * row, 1.1 * row)
        ax.set_yticks([])
        ax.set_ylabel(marks[m], rotation=0, ha="right", va="center", fontsize=7)
        ax.text(1.01, 0.5, f"max {row:.2g}\nsum {v.sum():+.2g}", transform=ax.transAxes, fontsize=6, va="center")
        if m < n_marks - 1:
            ax.set_xticks([])
    ax.set_xlabel("promoter: distance from the TSS (kb, in the direction of transcription)", fontsize=8)
    if side:
        ax2 = fig.add_subplot(grid[:, 1])
        lim = float(np.abs(pcres).max()) or 1.0
        im = ax2.imshow(pcres.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
        names = [pcre_labels[j] if j < len(pcre_labels) else f"pCRE {j}" for j in range(len(pcres))]
        ax2.set_xticks(range(len(pcres)), names, rotation=40, ha="right", fontsize=6)
        ax2.set_yticks(range(n_marks), marks, fontsize=7)
        ax2.set_title("pCREs (summed over bins and bin sizes)", fontsize=8)
        fig.colorbar(im, ax=ax2, shrink=0.6, label="attribution")
    fig.suptitle(f"{gene} ({strand} strand){': ' + prediction if prediction else ''}\nattribution at {bin_size}-bp "
                 "bins: red raises the predicted score, blue lowers it (each promoter row on its own scale)",
                 fontsize=8)
    save_figure(fig, out, dpi=110, bbox_inches="tight")
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


# What a model that ranks genes at random scores, per metric (the chance line of a comparison panel).
CHANCE = {"auroc": 0.5, "call_auroc": 0.5, "pearson": 0.0, "spearman": 0.0}


def comparison_plot(per_fold: pd.DataFrame, out: str | Path, *, reference: dict[str, float] | None = None,
                    title: str = "held-out performance", untrained: Sequence[str] = ()) -> Path:
    """One panel per metric of ``per_fold`` (``model``, ``fold`` and metric columns, as ``compare`` writes
    ``comparison_folds.tsv``): a bar per model at its mean over folds, the sd as an error bar, every fold as a
    dot, a dotted line at chance (:data:`CHANCE`); ``reference`` draws a dashed line per metric (an oracle's
    ceiling, say). A model in ``untrained`` (its held-out scores were all but constant) is drawn hatched and
    grey and labelled "did not train": its metric ranks noise."""
    metrics = [c for c in per_fold.columns if c not in ("model", "fold")]
    models = list(dict.fromkeys(per_fold.model))
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.2 + 0.55 * len(models) * len(metrics) + 1.5 * len(metrics),
                                                       3.6), squeeze=False)
    for a, m in zip(axes[0], metrics, strict=True):
        groups = [per_fold.loc[per_fold.model == name, m].to_numpy(dtype=float) for name in models]
        x = np.arange(len(models))
        kept = [g[np.isfinite(g)] for g in groups]  # a metric a fold cannot have (no down gene) is NaN there
        bad = [name in untrained for name in models]
        bars = a.bar(x, [g.mean() if len(g) else np.nan for g in kept],
                     yerr=[g.std(ddof=1) if len(g) > 1 else 0 for g in kept],
                     color=["0.85" if b else "lightsteelblue" for b in bad], edgecolor="k", lw=0.5, capsize=3)
        for bar, b in zip(bars, bad, strict=True):
            bar.set_hatch("//" if b else "")
        for i, g in enumerate(groups):
            a.plot(np.full(len(g), i) + np.linspace(-0.15, 0.15, len(g)), g, "k.", ms=4)
        if m in CHANCE:
            a.axhline(CHANCE[m], color="0.4", ls=":", lw=1, label="chance")
        if reference and m in reference:
            a.axhline(reference[m], color="C3", ls="--", lw=1, label="oracle")
        a.legend(fontsize=7, loc="lower right")
        a.set_xticks(x, [f"{name}\n(did not train)" if b else name for name, b in zip(models, bad, strict=True)],
                     rotation=40, ha="right", fontsize=8)
        a.set(ylabel=m, title=m)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)
