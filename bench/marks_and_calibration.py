"""Missing marks and calibration on the read-level simulation (held-out folds).

Simulates and preprocesses (``bench/sim_data.py``), then trains the 4 chromosome folds
twice with the same seed: normally and with mark dropout (``--dropout``, default 0.2).
Each fold's model predicts its held-out genes with all 7 marks and with each single mark
missing: the dropout model sees the mark as absent (``--absent-marks``); the normal model
cannot, so the missing mark is given as zeros (what a user without that track would feed
it). Then ``chromoformer evaluate --temperature``'s calibration on the held-out
predictions: ECE before and after a temperature fitted on the other folds. Usage::

    python bench/marks_and_calibration.py [--span-mb 60] [--epochs 15] [--lr 2e-4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from chromoformer.config import MARKS
from chromoformer.data import read_metadata
from chromoformer.data.folds import split_genes
from chromoformer.data.marks import MarkView
from chromoformer.data.store import BinnedStore
from chromoformer.engine.runtime import Runtime
from chromoformer.inference.predict import predict_genes
from chromoformer.results.evaluate import evaluate
from chromoformer.spec import RunSpec
from chromoformer.training.fit import train_fold

try:
    from sim_data import prepare
except ImportError:  # python -m bench.marks_and_calibration
    from bench.sim_data import prepare


class ZeroMark(MarkView):
    """A store with one mark's column read as zeros and nothing saying it is missing."""

    def __init__(self, store: BinnedStore, k: int) -> None:
        super().__init__(store, list(range(store.n_feats)), store.marks)
        self.k = k

    def region_sums(self, region, crop, gene):
        s = self.source.region_sums(region, crop, gene).copy()
        s[:, self.k] = 0
        return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--span-mb", type=float, default=60.0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-marks-"))
    meta, meta_csv, store_path, truth = prepare(wd, a.span_mb)
    genes, store = read_metadata(meta_csv), BinnedStore(store_path)
    base = RunSpec(marks=MARKS).replace(num_epoch=a.epochs, lr=a.lr)
    specs = {"normal": base,
             f"mark dropout {a.dropout:g}": base.replace(config=dataclasses.replace(base.config,
                                                                                     mark_dropout=a.dropout))}
    auroc: dict[str, dict[str, float]] = {}
    calib = []
    for name, spec in specs.items():
        runs, rows = wd / "runs" / name.replace(" ", "-"), []
        for fold in (1, 2, 3, 4):
            train_fold(spec, meta_csv, store_path, fold, runs / f"fold{fold}", resume=True,
                       runtime=Runtime(num_workers=0))
            _, val = split_genes(genes, fold)
            ck = runs / f"fold{fold}" / "last.pt"  # last epoch: no selection on the held-out fold
            cases = {"all marks": predict_genes([ck], val, store)}
            for k, m in enumerate(MARKS):
                cases[f"without {m}"] = (predict_genes([ck], val, store, absent_marks=[m]) if name != "normal"
                                         else predict_genes([ck], val, ZeroMark(store, k)))
            label = np.array([g.label for g in val])
            rows.append({c: roc_auc_score(label, df.prediction) for c, df in cases.items()})
            (runs / "oof").mkdir(exist_ok=True)
            pd.DataFrame({"gene_id": [g.gene_id for g in val], "label": label,
                          "score": cases["all marks"].prediction}).to_csv(runs / "oof" / f"fold{fold}.csv",
                                                                          index=False)
        auroc[name] = pd.DataFrame(rows).mean().to_dict()
        m = evaluate([runs / "oof" / f"fold{f}.csv" for f in (1, 2, 3, 4)], runs / "evaluation", temperature=True)
        pooled = m.set_index("fold").loc["pooled"]
        calib.append({"model": name, "pooled AUROC": pooled.auroc, "ECE": pooled.ece,
                      "ECE after temperature (cross-fitted)": pooled.ece_temperature,
                      "temperature (all folds)": pooled.temperature})
    oof = pd.concat(pd.read_csv(wd / "runs" / "normal" / "oof" / f"fold{f}.csv").assign(fold=f) for f in (1, 2, 3, 4))
    oracle = np.mean([roc_auc_score(g.label, truth.loc[g.gene_id].oracle) for _, g in oof.groupby("fold")])
    print(f"\n{len(meta)} simulated genes, 4 chromosome folds, {a.epochs} epochs, lr {a.lr:g}, last-epoch "
          f"held-out predictions; oracle (generative model) mean per-fold AUROC {oracle:.3f}; work dir {wd}\n")
    table = pd.DataFrame(auroc)
    table["normal - dropout"] = table.iloc[:, 0] - table.iloc[:, 1]
    print("mean per-fold held-out AUROC (normal model: missing mark fed as zeros; dropout model: absent)")
    print(table.to_markdown(floatfmt=".3f"))
    print("\ncalibration of the held-out predictions (10 bins)")
    print(pd.DataFrame(calib).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
