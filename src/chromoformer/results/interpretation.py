"""The interpretation folder: :func:`interpret` writes it (``chromoformer interpret``), :func:`read_interpretation`
reads it back (for ``report`` and ``export``).

Every file is checked as it is read: a hand-edited, truncated or foreign file is an error that
names it and says to re-run ``interpret``, never a traceback or a silently wrong page/track.

Files: ``interpret.json`` (the record: genes, marks, bin sizes, w_prom...), ``perturbation.tsv``
(gene_id, perturbation, target, delta), ``attention.tsv`` (gene_id, pcre, weight; Chromoformer
checkpoints only) and ``attributions.npz`` (gene_id and ``{promoter,pcre}_{bin}`` arrays).
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import MetadataError, UsageError
from chromoformer.files.atomic import atomic_write, write_table, write_text
from chromoformer.files.checked import not_an_input, numeric_column, read_table, require_file
from chromoformer.files.layouts import InterpretationFiles
from chromoformer.files.locking import locked_folder
from chromoformer.files.names import check_label, check_name

RERUN = "re-run chromoformer interpret"
PERTURBATION = ("gene_id", "perturbation", "target", "delta")
ATTENTION = ("gene_id", "pcre", "weight")


@dataclass(frozen=True)
class Interpretation:
    """One interpretation folder: its record and tables (None where the file is absent)."""

    path: Path
    info: dict
    perturbation: pd.DataFrame | None
    attention: pd.DataFrame | None

    @property
    def genes(self) -> list[str]:
        return list(self.info["genes"])

    @property
    def is_pair(self) -> bool:
        """A differential (two-cell) interpretation: its arrays are per cell, its targets name the cell."""
        return self.info.get("task") == "diff"

    def attributions(self, bin_size: int, cell: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(promoter, pcre) attribution arrays at ``bin_size`` (of ``cell`` ``A`` or ``B`` for a differential
        interpretation), checked against the record's genes.

        Shapes: promoter ``(n_genes, w_prom / bin_size, n_marks)``, pcre ``(n_genes, i_max,
        w_max / bin_size, n_marks)``."""
        if (cell is not None) != self.is_pair or cell not in (None, "A", "B"):
            raise UsageError(f"{self.path}: attributions of cell A or B belong to a differential interpretation; "
                             f"this one is {'differential' if self.is_pair else 'of one cell'}")
        p = require_file(InterpretationFiles(self.path).attributions, f"attribution arrays ({RERUN})", UsageError)
        pre = f"{cell}_" if cell else ""
        try:
            with np.load(p, allow_pickle=False) as z:
                ids, promoter, pcre = list(z["gene_id"]), z[f"{pre}promoter_{bin_size}"], z[f"{pre}pcre_{bin_size}"]
        except KeyError as e:
            raise UsageError(f"{p}: no array {e} ({RERUN})") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise UsageError(f"{p}: unreadable attribution arrays ({' '.join(str(e).split())[:120]}; {RERUN})"
                             ) from None
        if ids != self.genes:
            raise UsageError(f"{self.path}: its attribution arrays and its record list different genes; {RERUN}")
        n = len(ids)
        if promoter.ndim != 3 or pcre.ndim != 4 or len(promoter) != n or len(pcre) != n \
                or not (np.isfinite(promoter).all() and np.isfinite(pcre).all()):
            raise UsageError(f"{p}: attribution arrays of the wrong shape or not finite ({RERUN})")
        w_prom, w_max = self.info["w_prom"], self.info.get("w_max")
        if promoter.shape[1] * bin_size != w_prom or (w_max is not None and pcre.shape[2] * bin_size != w_max):
            raise UsageError(f"{p}: promoter attributions of {promoter.shape[1]} x {bin_size} bp do not cover the "
                             f"record's w_prom {w_prom} (or pCRE ones its w_max {w_max}): the record was edited; "
                             f"{RERUN}")
        return promoter, pcre


def _table(path: Path, what: str, columns: tuple[str, ...], numeric: str) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    t = read_table(path, UsageError, f"{what} ({RERUN})", sep="\t", dtype={"gene_id": str})
    missing = [c for c in columns if c not in t.columns]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)} ({RERUN})")
    return t.assign(**{numeric: numeric_column(t, numeric, path, UsageError, note=f" ({RERUN})").astype(float)})


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _check_record(info: object, p: Path) -> None:
    """``interpret.json`` as :func:`interpret` writes it: every field of the right type and range."""
    ok = isinstance(info, dict) and isinstance(info.get("genes"), list) and info["genes"] \
        and all(isinstance(g, str) for g in info["genes"]) and isinstance(info.get("binsizes"), list) \
        and info["binsizes"] and all(_positive_int(b) for b in info["binsizes"]) \
        and isinstance(info.get("marks"), list) and info["marks"] and all(isinstance(m, str) for m in info["marks"]) \
        and _positive_int(info.get("w_prom"))
    if not ok:
        raise UsageError(f"{p}: not a chromoformer interpretation record (genes, marks, binsizes, w_prom; {RERUN})")
    assert isinstance(info, dict)
    if info.get("task", "clf") not in ("clf", "reg", "diff"):
        raise UsageError(f"{p}: 'task' must be clf, reg or diff, got {info['task']!r} ({RERUN})")
    for key in ("score", "method", "checkpoint"):
        if key in info and not isinstance(info[key], str):
            raise UsageError(f"{p}: '{key}' must be text, got {info[key]!r} ({RERUN})")
    for key in ("w_max", "i_max"):
        if key in info and not _positive_int(info[key]):
            raise UsageError(f"{p}: '{key}' must be a positive integer, got {info[key]!r} ({RERUN})")
    if "ig_steps" in info and not (isinstance(info["ig_steps"], int) and not isinstance(info["ig_steps"], bool)
                                   and info["ig_steps"] >= 0):
        raise UsageError(f"{p}: 'ig_steps' must be an integer >= 0, got {info['ig_steps']!r} ({RERUN})")
    if len(set(info["genes"])) != len(info["genes"]):
        raise UsageError(f"{p}: a gene is listed twice ({RERUN})")
    for g in info["genes"]:
        check_label(g, "gene id", str(p), UsageError)
    for m in info["marks"]:
        check_name(m, "mark name", str(p))
    if "gene_info" in info:
        _check_gene_info(info["gene_info"], info["genes"], p)
    if "checkpoint_sha256" in info and not (isinstance(info["checkpoint_sha256"], str)
                                            and re.fullmatch(r"[0-9a-f]{64}", info["checkpoint_sha256"])):
        raise UsageError(f"{p}: 'checkpoint_sha256' must be 64 hex digits ({RERUN})")
    if any(info["w_prom"] % b for b in info["binsizes"]):
        raise UsageError(f"{p}: w_prom {info['w_prom']} is not a multiple of every bin size {info['binsizes']} "
                         f"({RERUN})")


def _finite(v: object, integer: bool = False) -> bool:
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    return ok and not isinstance(v, bool) and math.isfinite(v)


def _check_gene_info(records: object, genes: list, p: Path) -> None:
    """``gene_info`` as :func:`gene_records` writes it, for the same genes in the same order."""
    bad = f"{p}: 'gene_info' is not the per-gene list interpret writes ({RERUN})"
    if not isinstance(records, list) or [r.get("gene_id") if isinstance(r, dict) else None for r in records] != genes:
        raise UsageError(bad)
    for r in records:
        ok = isinstance(r.get("chrom"), str) and _finite(r.get("tss"), True) and r.get("strand") in ("+", "-") \
            and _finite(r.get("score")) and all(r.get(k) is None or _finite(r[k]) for k in ("label", "expression")) \
            and ("probability" not in r or (_finite(r["probability"]) and 0 <= r["probability"] <= 1)) \
            and isinstance(r.get("pcres"), list) and all(
                isinstance(c, dict) and isinstance(c.get("region"), str) and _finite(c.get("distance"), True)
                and _finite(c.get("interaction")) for c in r["pcres"])
        if not ok:
            raise UsageError(f"{bad[:-1]}; gene {r.get('gene_id')})")
        check_label(r["chrom"], "chromosome", str(p), UsageError)
        for c in r["pcres"]:
            check_label(c["region"], "pCRE region", str(p), UsageError)


def read_interpretation(folder: str | Path, need_perturbation: bool = False) -> Interpretation:
    """The folder's record and tables, each checked (see the module docstring)."""
    d = Path(folder)
    if not d.is_dir():
        raise UsageError(f"{d}: interpretation folder not found")
    files = InterpretationFiles(d)
    p = require_file(files.record, f"interpretation record ({RERUN})", UsageError)
    try:
        info = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: unreadable interpretation record ({' '.join(str(e).split())[:100]}; {RERUN})"
                         ) from None
    _check_record(info, p)
    per = _table(files.perturbation, "perturbation table", PERTURBATION, "delta")
    if per is None and need_perturbation:
        require_file(files.perturbation, f"perturbation table ({RERUN})", UsageError)
    att = _table(files.attention, "attention table", ATTENTION, "weight")
    return Interpretation(d, info, per, att)


def choose_genes(rows: Sequence, genes: Sequence[str] | None, meta: str | Path, key=lambda r: r.gene_id) -> list:
    """The ``rows`` (genes, or pairs of genes with ``key``) named by ``genes``, in that order; default: the
    first 8. A gene given twice or absent from ``meta`` is an error."""
    if not genes:
        return list(rows[:8])
    twice = sorted(x for x, n in Counter(genes).items() if n > 1)
    if twice:
        raise UsageError(f"--genes: gene(s) given twice: {', '.join(twice[:5])}")
    by_id = {key(r): r for r in rows}
    missing = [x for x in genes if x not in by_id]
    if missing:
        raise MetadataError(f"{meta}: gene(s) not found: {', '.join(missing)}")
    return [by_id[x] for x in genes]


def interpret(meta: str | Path, signal: str | Path, checkpoint: str | Path, out: str | Path, *,
              genes: Sequence[str] | None = None, ig_steps: int = 0, method: str | None = None,
              score_delta: float = 1.0, mark_map: Mapping[str, str] | str | None = None,
              precision: str = "fp32") -> InterpretationFiles:
    """Interpret ``genes`` (default: the metadata's first 8) with one checkpoint and write the folder ``out``:
    perturbation and attention tables, attribution arrays, the record and per-gene plots, holding the folder's
    lock (a second interpretation into it is refused).

    ``method``/``ig_steps``: see :func:`chromoformer.inference.attribution.attributions`; ``score_delta``: the
    interaction-score shift of the perturbation table; ``mark_map``: see
    :func:`chromoformer.data.marks.select_marks`; ``precision``: the forward passes' arithmetic
    (:mod:`chromoformer.engine.precision`; interpretation runs on CPU, so fp32 or bf16).
    """
    not_an_input(out, [meta, checkpoint], folders=[signal])
    with locked_folder(InterpretationFiles(Path(out)).dir, f"interpretation folder {out}"):
        return _interpret(meta, signal, checkpoint, out, genes=genes, ig_steps=ig_steps, method=method,
                          score_delta=score_delta, mark_map=mark_map, precision=precision)


def _interpret(meta: str | Path, signal: str | Path, checkpoint: str | Path, out: str | Path, *,
              genes: Sequence[str] | None = None, ig_steps: int = 0, method: str | None = None,
              score_delta: float = 1.0, mark_map: Mapping[str, str] | str | None = None,
              precision: str = "fp32") -> InterpretationFiles:
    """:func:`interpret` without the lock."""
    import torch

    from chromoformer.data import ChromoformerDataset, read_metadata
    from chromoformer.data.marks import select_marks
    from chromoformer.data.sources import open_source
    from chromoformer.data.store import file_sha256
    from chromoformer.engine.loading import load_model
    from chromoformer.engine.precision import autocast, check_precision
    from chromoformer.inference.attribution import (
        attributions,
        check_interpretation_size,
        perturbation_table,
        regulation_attention_table,
    )
    from chromoformer.model import model_score
    from chromoformer.results import plots

    check_interpretation_size(ig_steps, len(genes or ()))
    if not math.isfinite(score_delta):
        raise UsageError(f"--score-delta must be a finite number, got {score_delta}")
    cpu = torch.device("cpu")
    check_precision(precision, cpu)
    lm = load_model(checkpoint)
    lm.spec.expect_cells(1, checkpoint)
    c, marks = lm.config, lm.marks
    chosen = choose_genes(read_metadata(meta, i_max=c.i_max, w_max=c.w_max), genes, meta)
    src = select_marks(open_source(signal, build=False, n_feats=c.n_feats, base=lm.spec.base), marks, mark_map)
    ds = ChromoformerDataset(chosen, src, c, lm.binsizes, lm.task)
    ds.validate()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(chosen))))
    files = InterpretationFiles(Path(out))
    files.dir.mkdir(parents=True, exist_ok=True)
    with autocast(precision, cpu):
        perturbed = perturbation_table(lm.model, batch, score_delta, marks)
        att = regulation_attention_table(lm.model, batch) if lm.arch.startswith("chromoformer") else None
        attr = attributions(lm.model, batch, ig_steps, method)
        with torch.no_grad():
            scores = model_score(lm.model.eval(), batch).float().tolist()
    write_table(perturbed, files.perturbation, sep="\t", float_format="%.6g")
    if att is not None:
        write_table(att, files.attention, sep="\t", float_format="%.6g")
    attr = {part: {b: a.detach().float() for b, a in d.items()} for part, d in attr.items()}
    arrays = {f"{part}_{b}": a.numpy() for part, d in attr.items() for b, a in d.items()}
    atomic_write(files.attributions, lambda f: np.savez_compressed(f, gene_id=np.array(batch["gene_id"]), **arrays))
    records = gene_records(chosen, scores, lm.task)
    write_text(files.record, json.dumps({
        "checkpoint": str(lm.path), "checkpoint_sha256": file_sha256(lm.path), "task": lm.task,
        "gene_info": records, "marks": list(marks), "binsizes": list(lm.binsizes), "w_prom": c.w_prom,
        "w_max": c.w_max, "i_max": c.i_max, "genes": [g.gene_id for g in chosen], "ig_steps": ig_steps,
        "method": method or ("integrated-gradients" if ig_steps else "gradient-x-input"),
        "score": "logit_1 - logit_0" if lm.task == "clf" else "predicted log2(RPKM + 1)"}, indent=1) + "\n")
    fine = min(lm.binsizes)
    for i, (g, rec) in enumerate(zip(chosen, records, strict=True)):
        labels = [pcre_label(j, p) for j, p in enumerate(rec["pcres"])]
        pcre_attr = sum(attr["pcre"][b][i, : len(g.pcres)].detach().numpy().sum(axis=-2) for b in lm.binsizes)
        plots.attribution_track(attr["promoter"][fine][i].detach().numpy(), g.gene_id, fine,
                                files.plot("attribution", g.gene_id), strand=g.strand, marks=marks,
                                pcres=pcre_attr if len(g.pcres) else None, pcre_labels=labels,
                                prediction=prediction_text(rec))
        if att is not None and len(g.pcres):
            plots.attention_heatmap(att, g.gene_id, files.plot("attention", g.gene_id), pcre_labels=labels)
    return files


def gene_records(genes: Sequence, scores: Sequence[float], task: str) -> list[dict]:
    """What a reader of an interpretation wants first, per gene: where it is, what the model predicts and what
    was observed, and where each pCRE lies (signed distance from the TSS in the direction of transcription)."""
    out = []
    for g, s in zip(genes, scores, strict=True):
        rec = {"gene_id": g.gene_id, "chrom": g.chrom, "tss": g.tss, "strand": g.strand, "score": float(s),
               "label": g.label, "expression": g.expression, "pcres": []}
        if task == "clf":
            rec["probability"] = 1.0 / (1.0 + math.exp(-max(min(s, 700.0), -700.0)))  # softmax P(class 1)
        for r, score in zip(g.pcres, g.scores, strict=True):
            mid = (r.start + r.end) // 2
            rec["pcres"].append({"region": r.name, "distance": (mid - g.tss) * (1 if g.strand == "+" else -1),
                                 "interaction": float(score)})
        out.append(rec)
    return out


def pcre_label(j: int, pcre: dict) -> str:
    """``pCRE 0: +35.2 kb, score 2.10`` (distance from the TSS, downstream positive)."""
    return f"pCRE {j}: {pcre['distance'] / 1000:+.1f} kb, score {pcre['interaction']:.2f}"


def prediction_text(rec: dict) -> str:
    """One gene's prediction and observation in words, for a title or a page."""
    if "probability" in rec:
        seen = f", observed label {rec['label']}" if rec.get("label") is not None else ""
        return f"P(expressed) {rec['probability']:.2f} (logit_1 - logit_0 {rec['score']:+.2f}){seen}"
    seen = f", observed {math.log2(rec['expression'] + 1):.2f}" if rec.get("expression") is not None else ""
    return f"predicted log2(RPKM + 1) {rec['score']:.2f}{seen}"
