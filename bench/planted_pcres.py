"""Do pCREs that carry planted signal rank above those that do not? (in-silico pCRE removal)

For each fold's model (trained by ``chromoformer compare`` / ``simulated_accuracy.py``) and
its held-out genes, every pCRE is dropped in silico; the score change (log-odds) ranks the
pCREs. Ground truth: the simulator's enhancer activity of each pCRE (``pcre_truth.tsv``;
active = H3K27ac/H3K4me1 present in > 0 of its bins). Reports the AUROC of "drop lowers
the score" (-delta) for active vs inactive pCREs, and the mean delta of each group.

    python bench/planted_pcres.py --sim SIM_DIR --meta meta.csv --store STORE --runs RUNS_DIR
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from chromoformer.data import BinnedStore, ChromoformerDataset, read_metadata
from chromoformer.data.folds import held_out_split
from chromoformer.engine.loading import load_model
from chromoformer.inference.attribution import drop_pcre, model_score


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--runs", required=True, help="directory with fold1..fold4/last.pt")
    a = p.parse_args()
    truth = pd.read_csv(f"{a.sim}/pcre_truth.tsv", sep="\t")
    truth = truth.groupby(["gene_id", "pcre"], as_index=False).agg(enhancer_activity=("enhancer_activity", "max"),
                                                                   score=("score", "max"))
    genes = read_metadata(a.meta)
    store = BinnedStore(a.store)
    rows = []
    for fold in (1, 2, 3, 4):
        lm = load_model(f"{a.runs}/fold{fold}/last.pt")
        held = [g for g in genes if g.split == held_out_split(fold) and g.pcres]
        ds = ChromoformerDataset(held, store, lm.config, lm.binsizes, lm.task)
        for batch in torch.utils.data.DataLoader(ds, batch_size=64):
            with torch.no_grad():
                base = model_score(lm.model, batch)
                for j in range(int(batch["n_pcres"].max())):
                    delta = model_score(lm.model, drop_pcre(batch, j)) - base
                    has = batch["n_pcres"] > j
                    rows.append(pd.DataFrame({"gene_id": [g for g, h in zip(batch["gene_id"], has, strict=True) if h],
                                              "target": f"pcre{j}", "delta": delta[has].numpy()}))
    t = pd.concat(rows)
    names = {(g.gene_id, f"pcre{j}"): r.name for g in genes for j, r in enumerate(g.pcres)}
    t["pcre"] = [names[(g, x)] for g, x in zip(t.gene_id, t.target, strict=True)]
    t = t.merge(truth, on=["gene_id", "pcre"], how="left")
    active = t.enhancer_activity > 0
    print(f"\n{len(t)} held-out pCREs ({active.sum()} with planted enhancer marks, {(~active).sum()} without)\n")
    print(f"AUROC(-delta: active vs inactive)  {roc_auc_score(active, -t.delta):.3f}")
    print(f"mean delta when dropped: active {t.delta[active].mean():+.3f}, inactive {t.delta[~active].mean():+.3f}")
    strong = t.enhancer_activity >= 0.25
    print(f"AUROC(-delta: strong (>= 25% of bins marked, n={strong.sum()}) vs unmarked) "
          f"{roc_auc_score(strong[strong | ~active], -t.delta[strong | ~active]):.3f}")
    print(f"Spearman(-delta, enhancer_activity x score) "
          f"{pd.Series(-t.delta).corr(t.enhancer_activity * t.score, method='spearman'):.3f}")


if __name__ == "__main__":
    main()
