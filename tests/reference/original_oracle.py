"""Run the ORIGINAL chromoformer (PyPI 1.1.3) on CPU and save its outputs.

Used only as an oracle by tests and benchmarks. The original package is never
imported by our code: this script runs in its own process with the original's
install directory first on ``sys.path`` and its hard-coded ``.cuda()`` calls
turned into no-ops.

Usage::

    python original_oracle.py --ref-site DIR --meta M.csv --npy-dir D \
        --checkpoint C.pt --out out.npz [--regression]
"""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ref-site", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--npy-dir", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--regression", action="store_true")
    p.add_argument("--bsz", type=int, default=16)
    args = p.parse_args()

    sys.path.insert(0, args.ref_site)
    import numpy as np
    import pandas as pd
    import torch

    torch.Tensor.cuda = lambda self, *a, **k: self  # neutralise hard-coded .cuda()
    torch.nn.Module.cuda = lambda self, *a, **k: self
    import chromoformer as orig  # the original package, from --ref-site

    assert args.ref_site in orig.__file__, orig.__file__
    kws = dict(
        n_feats=7,
        d_emb=128,
        d_head=128,
        embed_kws={"n_layers": 1, "n_heads": 2, "d_model": 128, "d_ff": 128},
        pairwise_interaction_kws={"n_layers": 2, "n_heads": 2, "d_model": 128, "d_ff": 256},
        regulation_kws={"n_layers": 6, "n_heads": 8, "d_model": 256, "d_ff": 256},
    )
    cls = orig.ChromoformerRegressor if args.regression else orig.ChromoformerClassifier
    model = cls(**kws)
    if args.checkpoint:
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["net"], strict=True)
    model.eval()
    genes = pd.read_csv(args.meta).gene_id.tolist()
    ds = orig.ChromoformerDataset(args.meta, args.npy_dir, genes, regression=args.regression)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.bsz, shuffle=False)
    outs, feats = [], {}
    with torch.no_grad():
        for i, d in enumerate(loader):
            out = model(
                d["promoter_feats"],
                d["promoter_pad_masks"],
                d["pcre_feats"],
                d["pcre_pad_masks"],
                d["interaction_masks"],
                d["interaction_freq"],
            )
            outs.append(out.numpy())
            if i == 0:  # keep the first batch's binned features for data-path tests
                for b in (2000, 500, 100):
                    feats[f"promoter_{b}"] = d["promoter_feats"][b].numpy()
                    feats[f"pcre_{b}"] = d["pcre_feats"][b].numpy()
                feats["interaction_freq"] = d["interaction_freq"].numpy()
    np.savez(args.out, out=np.concatenate(outs), gene_id=np.array(genes), **feats)


if __name__ == "__main__":
    main()
