"""``chromoformer report RUN_DIR``: an HTML page of a training run's figures and tables."""

from __future__ import annotations

import argparse
import html
from pathlib import Path

import pandas as pd

from chromoformer import plots
from chromoformer.evaluate import evaluate


def report(run_dir: str | Path) -> Path:
    run = Path(run_dir)
    out = run / "report"
    out.mkdir(exist_ok=True)
    parts = [f"<h1>Chromoformer run {html.escape(run.name)}</h1>"]
    if (run / "metrics.tsv").is_file():
        plots.training_curves(run / "metrics.tsv", out / "training_curves.png")
        m = pd.read_csv(run / "metrics.tsv", sep="\t")
        parts += ["<h2>Training</h2>", '<img src="training_curves.png">',
                  m.to_html(index=False, float_format=lambda v: f"{v:.4f}")]
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
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Chromoformer report</title>"
                    "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}"
                    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
                    "</style></head><body>" + "\n".join(parts) + "</body></html>")
    return page


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer report", description=__doc__)
    p.add_argument("run_dir")
    return p


def run(args: argparse.Namespace) -> None:
    print(report(args.run_dir))
