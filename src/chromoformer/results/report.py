"""``chromoformer report RUN_DIR``: an HTML page of a training run's figures and tables.

With ``--interpretation DIR`` (written by ``chromoformer interpret`` with one of this run's checkpoints; an
interpretation of another model is refused) every interpreted gene gets its own page
(``report/genes/GENE.html``: where it is, what was predicted and observed, its pCREs, the attention heatmap,
the attribution plot and the perturbation table), linked from the index; every page names the checkpoint it
explains. The report folder is self-contained:
figures are copied into it and every link is relative.
"""

from __future__ import annotations

import html
import urllib.parse
from pathlib import Path

import pandas as pd

from chromoformer.data.store import file_sha256
from chromoformer.errors import RunError, UsageError
from chromoformer.files.atomic import write_text
from chromoformer.files.checked import not_an_input, read_table
from chromoformer.files.layouts import EvaluationFiles, InterpretationFiles, ReportFiles, RunPaths
from chromoformer.results import plots
from chromoformer.results.evaluate import evaluate
from chromoformer.results.interpretation import Interpretation, pcre_label, prediction_text, read_interpretation


def _metrics(path: Path) -> pd.DataFrame:
    m = read_table(path, RunError, "metrics table", sep="\t")
    if not {"epoch", "train_loss", "val_loss"} <= set(m.columns) or m.empty \
            or not all(pd.api.types.is_numeric_dtype(m[c]) for c in m.columns):
        raise RunError(f"{path}: not a chromoformer metrics.tsv (numeric columns with epoch, train_loss and "
                       "val_loss, one row per epoch)")
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


STYLE = ("<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}"
         "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style>")


def _href(path: str | Path) -> str:
    """A relative link, percent-encoded and attribute-escaped (a file name can hold quotes, '<', '#', '?')."""
    return html.escape(urllib.parse.quote(Path(path).as_posix()), quote=True)


def _page(title: str, parts: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}</head>"
            "<body>" + "\n".join(parts) + "</body></html>")


def _checkpoint_of(it: Interpretation, paths: RunPaths) -> Path:
    """The run's checkpoint the interpretation explains (by content when the record has its sha256, else by
    path); another model's interpretation is refused, so a report never mixes two models."""
    recorded, sha = it.info.get("checkpoint", "?"), it.info.get("checkpoint_sha256")
    for ck in (paths.best, paths.last):
        if ck.is_file() and (file_sha256(ck) == sha if sha else Path(recorded).resolve() == ck.resolve()):
            return ck
    raise UsageError(f"--interpretation {it.path}: it explains checkpoint {recorded}, which is not this run's "
                     f"{paths.best.name} or {paths.last.name} ({paths.run_dir}); interpret with -k {paths.best}, or "
                     "report the run that checkpoint came from")


def _gene_header(rec: dict | None) -> list[str]:
    """Where the gene is, what was predicted and observed, its pCREs (from the record's gene_info)."""
    if rec is None:
        return []
    parts = [f"<p>{html.escape(rec['chrom'])}:{rec['tss']:,} (TSS, {rec['strand']} strand); "
             f"{html.escape(prediction_text(rec))}</p>"]
    if rec["pcres"]:
        rows = "".join(f"<tr><td>{html.escape(pcre_label(j, c).split(':')[0])}</td><td>{html.escape(c['region'])}"
                       f"</td><td>{c['distance'] / 1000:+.1f} kb</td><td>{c['interaction']:.2f}</td></tr>"
                       for j, c in enumerate(rec["pcres"]))
        parts += ["<h2>pCREs</h2><table><tr><th>pCRE</th><th>region</th><th>distance from the TSS (downstream "
                  "+)</th><th>pcHi-C score</th></tr>" + rows + "</table>"]
    else:
        parts.append("<p>No pCRE: the model sees the promoter alone.</p>")
    return parts


def _gene_pages(it: Interpretation, out: ReportFiles, checkpoint: Path) -> list[str]:
    """One page per interpreted gene under ``out/genes``; returns the index's list items."""
    import shutil

    interp, info, per = it.path, it.info, it.perturbation
    genes_dir = out.genes
    genes_dir.mkdir(exist_ok=True)
    files = InterpretationFiles(interp)
    items = []
    records = {r["gene_id"]: r for r in info.get("gene_info", [])}
    for gid in info["genes"]:
        parts = [f'<p><a href="../{out.index.name}">back to the run</a></p><h1>{html.escape(gid)}</h1>',
                 *_gene_header(records.get(gid)),
                 f"<p>explained: {html.escape(info.get('score', ''))} of checkpoint {html.escape(checkpoint.name)} "
                 f"({html.escape(str(checkpoint))}); attributions: {html.escape(info.get('method', ''))}</p>"]
        for kind, title in (("attention", "Regulation attention to each pCRE"),
                            ("attribution", "Attribution per mark (promoter, finest bins)"),
                            ("difference", "What explains the fold change: attribution per mark and cell")):
            src = files.plot(kind, gid)
            if src.is_file():
                dst = out.gene_plot(kind, gid)
                shutil.copyfile(src, dst)
                parts += [f"<h2>{title}</h2>", f'<img src="{_href(dst.name)}" alt="{kind} of {html.escape(gid)}">']
        if per is not None and (per.gene_id == gid).any():
            t = per[per.gene_id == gid].drop(columns="gene_id").sort_values("delta", key=abs, ascending=False)
            base = t["score"].iloc[0] if "score" in t and t["score"].nunique() == 1 else None
            t = t.drop(columns=["score"]) if base is not None else t  # one value per gene: said once, above
            parts += ["<h2>In-silico perturbation (largest score changes first)</h2>",
                      f"<p>unperturbed score {base:.4f}; delta = perturbed - unperturbed</p>" if base is not None
                      else "",
                      t.head(30).to_html(index=False, float_format=lambda v: f"{v:.4f}")]
        page = out.gene_page(gid)
        write_text(page, _page(f"Chromoformer: {gid}", parts))
        items.append(f'<li><a href="{_href(page.relative_to(out.dir))}">{html.escape(gid)}</a></li>')
    return items


def report(run_dir: str | Path, interpretation: str | Path | None = None) -> Path:
    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"{run}: run directory not found")
    paths = RunPaths.from_output(run)
    if not (paths.metrics.is_file() or paths.val_predictions.is_file()):
        raise RunError(f"{run}: not a training run directory (no metrics.tsv or val_predictions.csv); give the "
                       "directory that chromoformer train -o wrote")
    metrics_table = _metrics(paths.metrics) if paths.metrics.is_file() else None
    it = read_interpretation(interpretation) if interpretation is not None else None  # checked before writing
    explained = _checkpoint_of(it, paths) if it is not None else None
    out = ReportFiles.of_run(run)
    not_an_input(out.dir, [], "the report folder", folders=[interpretation])  # RUN/report is rewritten
    out.dir.mkdir(exist_ok=True)
    ev = EvaluationFiles(out.dir)
    parts = [f"<h1>Chromoformer: {html.escape(run.resolve().name)}</h1>"]
    if explained is not None:
        parts.append(f"<p>interpreted genes explain checkpoint {html.escape(str(explained))}</p>")
    if metrics_table is not None:
        plots.training_curves(paths.metrics, out.training_curves)
        m = metrics_table
        parts += ["<h2>Training</h2>", f'<img src="{_href(out.training_curves.name)}" alt="training curves">',
                  m.to_html(index=False, formatters={c: _fmt(c) for c in m.columns})]
    if paths.val_predictions.is_file():
        metrics = evaluate([paths.val_predictions], out.dir)
        fig = ev.roc_pr if ev.roc_pr.is_file() else ev.scatter
        parts += ["<h2>Held-out genes (best epoch)</h2>", f'<img src="{_href(fig.name)}" alt="held-out performance">',
                  metrics.to_html(index=False, float_format=lambda v: f"{v:.4f}")]
        if ev.reliability.is_file():
            parts += ["<h3>Calibration</h3>", f'<img src="{_href(ev.reliability.name)}" alt="reliability diagram">']
    if it is not None:
        parts += ["<h2>Interpreted genes</h2><ul>", *_gene_pages(it, out, explained), "</ul>"]
    others = sorted(p for p in run.rglob("*.png") if out.dir not in p.parents)
    if others:
        parts.append("<h2>Other figures</h2><ul>")
        parts += [f'<li><a href="../{_href(p.relative_to(run))}">{html.escape(str(p.relative_to(run)))}</a></li>'
                  for p in others]
        parts.append("</ul>")
    page = out.index
    write_text(page, _page(f"Chromoformer: {run.resolve().name}", parts))
    return page
