"""``chromoformer report RUN_DIR``: an HTML page of a training run's figures and tables."""

from __future__ import annotations

import argparse
import html
from pathlib import Path

import pandas as pd

from chromoformer import plots
from chromoformer.errors import RunError
from chromoformer.evaluate import evaluate
from chromoformer.io import read_table, write_text


def _metrics(path: Path) -> pd.DataFrame:
    m = read_table(path, RunError, "metrics table", sep="\t")
    if "epoch" not in m.columns or m.empty or not all(pd.api.types.is_numeric_dtype(m[c]) for c in m.columns):
        raise RunError(f"{path}: not a chromoformer metrics.tsv (numeric columns with 'epoch', one row per epoch)")
    return m


def _fmt(column: str):
    """lr in scientific notation (3e-05, not 0.0000), seconds to 0.1 s, metrics to 4 decimals."""
    if column == "lr":
        return lambda v: f"{v:.3g}"
    if column == "seconds":
        return lambda v: f"{v:.1f}"
    if column == "epoch":
        return lambda v: f"{int(v)}"
    return lambda v: f"{v:.4f}"


def report(run_dir: str | Path) -> Path:
    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"{run}: run directory not found")
    if not ((run / "metrics.tsv").is_file() or (run / "val_predictions.csv").is_file()):
        raise RunError(f"{run}: not a training run directory (no metrics.tsv or val_predictions.csv); give the "
                       "directory that chromoformer train -o wrote")
    metrics_table = _metrics(run / "metrics.tsv") if (run / "metrics.tsv").is_file() else None
    out = run / "report"
    out.mkdir(exist_ok=True)
    parts = [f"<h1>Chromoformer run {html.escape(run.name)}</h1>"]
    if metrics_table is not None:
        plots.training_curves(run / "metrics.tsv", out / "training_curves.png")
        m = metrics_table
        parts += ["<h2>Training</h2>", '<img src="training_curves.png">',
                  m.to_html(index=False, formatters={c: _fmt(c) for c in m.columns})]
    if (run / "val_predictions.csv").is_file():
        metrics = evaluate([run / "val_predictions.csv"], out)
        fig = "roc_pr.png" if (out / "roc_pr.png").is_file() else "scatter.png"
        parts += ["<h2>Held-out genes (best epoch)</h2>", f'<img src="{fig}">',
                  metrics.to_html(index=False, float_format=lambda v: f"{v:.4f}")]
    others = sorted(p for p in run.rglob("*.png") if out not in p.parents)
    if others:
        parts.append("<h2>Other figures</h2><ul>")
        parts += [f'<li><a href="../{p.relative_to(run)}">{html.escape(str(p.relative_to(run)))}</a></li>'
                  for p in others]
        parts.append("</ul>")
    page = out / "index.html"
    write_text(page, "<!doctype html><html><head><meta charset='utf-8'><title>Chromoformer report</title>"
                    "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}"
                    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
                    "</style></head><body>" + "\n".join(parts) + "</body></html>")
    return page


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer report", description=__doc__)
    p.add_argument("run_dir", help="a run directory written by chromoformer train -o")
    return p


def run(args: argparse.Namespace) -> None:
    print(report(args.run_dir))
