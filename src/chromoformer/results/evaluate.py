"""Out-of-fold evaluation: every fold's ``val_predictions.csv`` -> metrics table and plots.

Each gene is predicted by the model that did not train on it, so pooling the folds'
validation predictions gives the whole-genome held-out performance (the paper's protocol).

Calibration of a classifier's P(expressed) (:func:`ece`, :func:`fit_temperature`): reliability, expected
calibration error, temperature.

For two classes, softmax P(class 1) = sigmoid(m) with the margin m = logit_1 - logit_0, so
the margin is recovered exactly from a stored probability (``margin``) and temperature
scaling is P_T = sigmoid(m / T): T > 1 softens over-confident predictions, T < 1 sharpens
them, and the ranking (AUROC, AP) never changes.

* ECE: predictions in ``n_bins`` equal-width bins of P(class 1); the sum over bins of
  (genes in the bin / all genes) x |mean P(class 1) - fraction of expressed genes|.
* ``fit_temperature``: the T minimising the cross-entropy of held-out predictions.
* ``cross_fitted``: each fold's predictions scaled by the T fitted on the *other* folds, so
  the ECE after scaling is measured on genes the fit never saw.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from chromoformer.errors import EvaluationError, UsageError
from chromoformer.files.atomic import write_text
from chromoformer.inference.predict import check_temperature

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from chromoformer.files.atomic import save_figure, writable_output, write_table
from chromoformer.files.checked import not_an_input, numeric_column, read_table, require_file
from chromoformer.files.frames import beside_as_parquet
from chromoformer.files.layouts import EvaluationFiles, RunPaths  # noqa: E402
from chromoformer.files.predictions import VAL_PAIR_COLUMNS, VAL_TARGET  # noqa: E402
from chromoformer.metrics import task_metrics  # noqa: E402

log = logging.getLogger(__name__)


def _read_run(p: Path) -> pd.DataFrame:
    require_file(p, "prediction table (val_predictions.csv)", EvaluationError)
    d = read_table(p, EvaluationError, "prediction table")
    targets = [c for c in dict.fromkeys(VAL_TARGET.values()) if c in d.columns]
    missing = [c for c in ("gene_id", "score") if c not in d.columns] + ([] if targets else ["the target"])
    if missing or len(targets) > 1:
        raise EvaluationError(f"{p}: missing column(s) {', '.join(missing)} (expected a run's val_predictions.csv "
                              f"with gene_id, one target ({' / '.join(dict.fromkeys(VAL_TARGET.values()))}) and "
                              "score)" if missing else f"{p}: two target columns ({', '.join(targets)})")
    d = d.rename(columns={targets[0]: "label"})  # one name inside the evaluation
    if d.empty:
        raise EvaluationError(f"{p}: no predictions (header only)")
    for c in ("label", "score"):
        d[c] = numeric_column(d, c, p, EvaluationError)
    dup = d.gene_id[d.gene_id.duplicated()]
    if len(dup):
        raise EvaluationError(f"{p}: gene {dup.iloc[0]} appears twice")
    return d


def load_runs(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate folds' prediction tables; every gene once, all of one task."""
    if len(set(map(str, paths))) != len(paths):
        raise EvaluationError("the same prediction file is given twice")
    frames = []
    for p in map(Path, paths):
        d = _read_run(p)
        frames.append(d.assign(fold=p.parent.name if p.name == RunPaths.from_output(p.parent).val_predictions.name
                                else p.stem))
    pair = {str(p): set(VAL_PAIR_COLUMNS) <= set(f.columns) for p, f in zip(paths, frames, strict=True)}
    if len(set(pair.values())) > 1:
        one = next(p for p, k in pair.items() if k)
        raise EvaluationError(f"{one} holds a differential (diff) model's fold changes but other files a single "
                              "cell's predictions; evaluate one task at a time")
    kinds = {str(p): is_classification(f) for p, f in zip(paths, frames, strict=True)}
    if len(set(kinds.values())) > 1 and not any(pair.values()):
        clf = [p for p, k in kinds.items() if k]
        raise EvaluationError(f"{clf[0]} holds 0/1 labels (a classifier) but other files hold expression values "
                              "(a regressor); evaluate one task at a time")
    for p, f in zip(paths, frames, strict=True):
        if kinds[str(p)] and len(f) and not f.score.between(0, 1).all():
            bad = f.score[~f.score.between(0, 1)].iloc[0]
            raise EvaluationError(f"{p}: a classifier's score is P(expressed), within [0, 1]; found {bad:g} (gene "
                                  f"{f.gene_id[~f.score.between(0, 1)].iloc[0]})")
    df = pd.concat(frames, ignore_index=True)
    dup = df.gene_id[df.gene_id.duplicated()]
    if len(dup):
        where = df.fold[df.gene_id == dup.iloc[0]].tolist()
        raise EvaluationError(f"gene {dup.iloc[0]} is predicted in more than one file ({', '.join(where)}): held-out "
                              "folds must not overlap")
    return df


def is_classification(df: pd.DataFrame) -> bool:
    return bool(df.label.isin([0, 1]).all()) and not is_pair(df)


def is_pair(df: pd.DataFrame) -> bool:
    """A differential model's table: its ``label`` and ``score`` are the observed and predicted fold change."""
    return set(VAL_PAIR_COLUMNS) <= set(df.columns)


def task_of(df: pd.DataFrame) -> str:
    return "diff" if is_pair(df) else "clf" if is_classification(df) else "reg"


def evaluate(paths: Sequence[str | Path], out: str | Path, temperature: bool = False, *,
             parquet: bool = False) -> pd.DataFrame:
    """Write ``metrics.tsv`` (per fold and pooled) and ``roc_pr.png`` or ``scatter.png`` into ``out``.

    A differential model's folds (their tables hold each cell's predicted expression) get the fold change's
    Pearson r, Spearman rho and R^2 and ``call_auroc``, the AUROC of up vs down genes
    (:func:`chromoformer.metrics.diff_metrics`).

    A classifier also gets its expected calibration error (``ece``), ``calibration.tsv`` and
    ``reliability.png``; with ``temperature`` a temperature is fitted: cross-fitted per fold
    for the ``ece_temperature`` column (each fold scaled by the other folds' fit) and on all
    folds for ``temperature.json``, which ``predict --temperature`` applies. ``parquet``: the metrics and
    out-of-fold tables also as ``.parquet`` beside them.
    """
    out = Path(out)
    files, run = EvaluationFiles(out), RunPaths.from_output(out)
    writable_output(files.metrics, "evaluation")
    if run.last.exists() or run.best.exists():
        raise UsageError(f"--out {out}: a training run directory; its metrics.tsv would be overwritten: give --out "
                         "another folder (e.g. an 'evaluation' folder)")
    for f in files.tables():
        not_an_input(f, paths, "--out")
    df = load_runs(paths)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write_evaluation(df, files, temperature, parquet)
    except BaseException:
        if created:  # a failed evaluation leaves no partial set of outputs behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write_evaluation(df: pd.DataFrame, files: EvaluationFiles, temperature: bool, parquet: bool = False
                      ) -> pd.DataFrame:
    task = task_of(df)
    clf = task == "clf"
    if temperature and not clf:
        raise EvaluationError(f"temperature scaling applies to classifiers; these predictions are a "
                              f"{'regressor' if task == 'reg' else 'differential model'}'s")
    rows = [{"fold": f, "n": len(g), **task_metrics(g.score.to_numpy(), g.label.to_numpy(), task)}
            for f, g in df.groupby("fold")]
    rows.append({"fold": "pooled", "n": len(df), **task_metrics(df.score.to_numpy(), df.label.to_numpy(), task)})
    metrics = pd.DataFrame(rows)
    if clf:
        metrics = _calibration(df, metrics, files, temperature)
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
        for f, g in [*df.groupby("fold"), ("pooled", df)]:
            if g.label.nunique() < 2:  # AUROC/AP undefined: said once, no curve drawn
                log.warning("%s: all %d genes have label %d: AUROC and AP are undefined (NaN)", f, len(g),
                            int(g.label.iloc[0]))
                continue
            fpr, tpr, _ = roc_curve(g.label, g.score)
            pr, rc, _ = precision_recall_curve(g.label, g.score)
            m = metrics.set_index("fold").loc[f]
            lw = 2.5 if f == "pooled" else 1
            a.plot(fpr, tpr, lw=lw, label=f"{f} (AUROC {m.auroc:.3f})")
            b.plot(rc, pr, lw=lw, label=f"{f} (AP {m.ap:.3f})")
        a.plot([0, 1], [0, 1], "k:", lw=0.8)
        a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (held-out genes)")
        b.set(xlabel="recall", ylabel="precision", title="precision-recall")
        if df.label.nunique() < 2:
            a.text(0.5, 0.5, "one class only:\nno ROC curve", ha="center", va="center")
            b.text(0.5, 0.5, "one class only:\nno PR curve", ha="center", va="center")
        else:
            a.legend(fontsize=7)
            b.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, files.roc_pr, dpi=120)
    else:
        fig, a = plt.subplots(figsize=(4.5, 4.5))
        a.scatter(df.label, df.score, s=4, alpha=0.5)
        lim = [min(df.label.min(), df.score.min()), max(df.label.max(), df.score.max())]
        a.plot(lim, lim, "k:", lw=0.8)
        m = metrics.iloc[-1]
        extra = f", up/down AUROC {m.call_auroc:.3f}" if task == "diff" else ""
        a.set(xlabel="observed log2 fold change (B vs A)" if task == "diff" else "observed log2(RPKM + 1)",
              ylabel="predicted", title=f"held-out genes: r = {m.pearson:.3f}, R2 = {m.r2:.3f}{extra}")
        fig.tight_layout()
        save_figure(fig, files.scatter, dpi=120)
    plt.close("all")
    oof = df.rename(columns={"label": VAL_TARGET[task]})  # the target by its name
    write_table(metrics, files.metrics, sep="\t", float_format="%.4f")
    write_table(oof, files.oof_predictions)
    if parquet:
        beside_as_parquet(metrics, files.metrics)
        beside_as_parquet(oof, files.oof_predictions)
    return metrics


def _calibration(df: pd.DataFrame, metrics: pd.DataFrame, files: EvaluationFiles, temperature: bool
                 ) -> pd.DataFrame:
    """ECE per fold and pooled, reliability table and diagram; optionally the temperature (see evaluate)."""
    groups = [*df.groupby("fold"), ("pooled", df)]
    metrics = metrics.assign(ece=[ece(g.score, g.label) for _, g in groups])
    tables = [reliability(df.score, df.label).assign(scores="held-out")]
    if temperature:
        if df.fold.nunique() < 2:
            raise EvaluationError("a cross-fitted temperature needs the held-out predictions of 2 or more folds")
        scaled, temps = cross_fitted(df)
        d2 = df.assign(score=scaled)
        metrics = metrics.assign(ece_temperature=[ece(g.score, g.label) for _, g in [*d2.groupby("fold"),
                                                                                      ("pooled", d2)]],
                                 temperature=[temps.get(str(f), np.nan) for f, _ in groups])
        tables.append(reliability(scaled, df.label).assign(scores="held-out, temperature of the other folds"))
        t = fit_temperature(df.score, df.label)
        metrics.loc[metrics.fold == "pooled", "temperature"] = t
        save_temperature(files.temperature, t, len(df), sorted(map(str, df.fold.unique())))
    table = pd.concat(tables, ignore_index=True)
    write_table(table, files.calibration, sep="\t", float_format="%.4f")
    fig, a = plt.subplots(figsize=(4.5, 4.5))
    a.plot([0, 1], [0, 1], "k:", lw=0.8, label="perfect calibration")
    pooled = metrics.set_index("fold").loc["pooled"]
    for (what, t), e in zip(table.groupby("scores", sort=False), ["ece", "ece_temperature"], strict=False):
        t = t[t.n > 0]
        a.plot(t.mean_p, t.frac_expressed, "o-", ms=4, label=f"{what} (ECE {pooled[e]:.3f})")
    a.set(xlabel="predicted P(expressed)", ylabel="fraction expressed", title="reliability (10 bins)",
          xlim=(0, 1), ylim=(0, 1))
    a.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, files.reliability, dpi=120)
    return metrics


EPS = 1e-7  # probabilities are stored as float32: clip before the logit


def margin(p: np.ndarray) -> np.ndarray:
    """(N,) P(class 1) -> (N,) logit_1 - logit_0."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def scale(p: np.ndarray, temperature: float) -> np.ndarray:
    """P(class 1) after temperature scaling, (N,) -> (N,)."""
    return 1.0 / (1.0 + np.exp(-margin(p) / temperature))


def reliability(p: np.ndarray, label: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per bin of P(class 1): ``lo, hi, n, mean_p, frac_expressed`` (empty bins have n = 0, NaN means)."""
    p, label = np.asarray(p, dtype=np.float64), np.asarray(label, dtype=np.float64)
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / n
        frac = np.bincount(idx, weights=label, minlength=n_bins) / n
    edges = np.linspace(0, 1, n_bins + 1)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "n": n, "mean_p": mean_p, "frac_expressed": frac})


def ece(p: np.ndarray, label: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error (see module docstring); NaN for no predictions."""
    t = reliability(p, label, n_bins)
    if t.n.sum() == 0:
        return math.nan
    used = t[t.n > 0]
    return float((used.n * (used.mean_p - used.frac_expressed).abs()).sum() / t.n.sum())


def fit_temperature(p: np.ndarray, label: np.ndarray) -> float:
    """The temperature in [1/50, 50] minimising the mean cross-entropy of ``sigmoid(margin(p) / T)``."""
    m, y = margin(p), np.asarray(label, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise EvaluationError(f"fitting a temperature needs both classes; the {len(y)} predictions hold one")

    def nll(log_t: float) -> float:
        z = m / math.exp(log_t)
        return float(np.mean(np.logaddexp(0, z) - y * z))  # -log sigmoid(z) for y=1, -log(1-sigmoid(z)) for y=0

    r = minimize_scalar(nll, bounds=(-math.log(50), math.log(50)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(r.x))


def cross_fitted(df: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """``df`` (fold, score, label) -> (scores scaled by the other folds' temperature, T per fold)."""
    out = np.empty(len(df))
    temps = {}
    for f in df.fold.unique():
        mine = (df.fold == f).to_numpy()
        t = fit_temperature(df.score[~mine], df.label[~mine])
        out[mine], temps[str(f)] = scale(df.score[mine], t), t
    return out, temps


def save_temperature(path: str | Path, temperature: float, n: int, folds: list[str]) -> Path:
    doc = {"temperature": temperature, "fitted_on": f"{n} held-out predictions of folds {', '.join(folds)}",
           "applies_to": "classifier P(class 1) = sigmoid((logit_1 - logit_0) / temperature)"}
    write_text(path, json.dumps(doc, indent=2) + "\n")
    return Path(path)


def read_temperature(value: str | Path) -> float:
    """A temperature given as a number or as the ``temperature.json`` that ``evaluate`` writes."""
    what = "--temperature"
    try:
        t = float(str(value))
    except ValueError:
        what = f"{value}: temperature"
        p = Path(value)
        if not p.is_file():
            raise UsageError(f"--temperature {value}: neither a number nor a file") from None
        try:
            t = float(json.loads(p.read_text())["temperature"])
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{p}: not a temperature.json (no numeric 'temperature')") from None
    return check_temperature(t, what)
