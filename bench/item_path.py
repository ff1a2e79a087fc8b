"""The training data path: a batch of 64 items read from the binned store and collated, before and after.

Before: every region of an item (the promoter, its pCREs) was binned at every bin size by its own calls
(``bin_log_means`` and ``pad_centered``: 27 numpy/torch round trips per gene, each with its own ``log``).
After (:meth:`chromoformer.data.dataset.ChromoformerDataset._frames`): an item's bin means are computed
region by region, logged in one call for the whole item, and written straight into the item's frames.
The "before" case here is that previous code, kept in this script as it was; both read the same genes from
the same store, one thread, cases interleaved, median of ``--repeats``; every item is compared bit for bit.

    python bench/item_path.py --genes 480 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from chromoformer.config import load_config
from chromoformer.data import ChromoformerDataset, read_metadata
from chromoformer.data.binning import bin_log_means, pad_centered
from chromoformer.data.sources import open_source, promoter_region
from chromoformer.data.synthetic import write_synthetic_dataset


class Before(ChromoformerDataset):
    """The item as the previous code made it (one binning and padding call per region and bin size)."""

    def _binned(self, sums: np.ndarray, length: int, flip: bool) -> dict:
        out = {}
        for b in self.binsizes:
            feats = bin_log_means(sums, length, self.source.base, b)
            frame, start = pad_centered(feats, self.w_max // b, flip)
            out[b] = (frame, start, len(feats))
        return out

    def __getitem__(self, i: int) -> dict:
        g, src = self.genes[i], self.source
        region, crop = promoter_region(src, g, self.w_prom)
        length = len(region) if crop is None else crop[1] - crop[0]
        prom = self._binned(src.region_sums(region, crop, g.gene_id), length, g.strand == "-")
        pcres = [self._binned(src.region_sums(r, None, g.gene_id), len(r), False) for r in g.pcres]
        item: dict = {"promoter_feats": {}, "promoter_bins": {}, "pcre_feats": {}, "pcre_bins": {}}
        for b in self.binsizes:
            frame, start, n = prom[b]
            item["promoter_feats"][b] = torch.from_numpy(frame)
            item["promoter_bins"][b] = torch.tensor([start, n])
            feats = np.zeros((self.i_max, self.w_max // b, self.n_feats), dtype=np.float32)
            spans = np.zeros((self.i_max, 2), dtype=np.int64)
            for j, p in enumerate(pcres):
                feats[j], spans[j, 0], spans[j, 1] = p[b]
            item["pcre_feats"][b] = torch.from_numpy(feats)
            item["pcre_bins"][b] = torch.from_numpy(spans)
        freq = np.zeros(self.i_max, dtype=np.float32)  # the fields this change did not touch, as the dataset
        freq[: len(g.scores)] = g.scores  # makes them (default config: no mark dropout, a classifier)
        item["n_pcres"] = torch.tensor(len(g.pcres))
        item["interaction_freq"] = torch.from_numpy(freq)
        item["gene_id"] = g.gene_id
        item["label"] = torch.tensor(-1 if g.label is None else g.label)
        return item


def same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)  # type: ignore[union-attr]
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)  # type: ignore[union-attr,arg-type]
    return a == b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=480)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-items-"))
    meta, npy = (wd / "meta.csv", wd / "npy") if (wd / "meta.csv").is_file() else \
        write_synthetic_dataset(wd, n_genes=a.genes, seed=0)
    cfg = load_config()
    genes = read_metadata(meta, i_max=cfg.i_max, w_max=cfg.w_max)
    src = open_source(npy, store=wd / "store", build=True, n_feats=cfg.n_feats)
    cases = {"before: per region and bin size": Before(genes, src, cfg),
             "after: one log per item, frames filled in place": ChromoformerDataset(genes, src, cfg)}
    ds_before, ds_after = cases.values()
    identical = all(same(ds_before[i], ds_after[i]) for i in range(len(genes)))
    batches = [list(range(s, s + 64)) for s in range(0, len(genes) - 63, 64)]
    times: dict[str, list[float]] = {k: [] for k in cases}
    load = os.getloadavg()[0]
    for _ in range(a.repeats):
        for name, ds in cases.items():
            t0 = time.perf_counter()
            for b in batches:
                default_collate([ds[i] for i in b])
            times[name].append((time.perf_counter() - t0) / len(batches))
    print(f"\n{len(batches)} batches of 64 from the store ({sum(len(g.pcres) for g in genes)} pCREs in "
          f"{len(genes)} genes), 1 thread, load average {load:.2f} before; median of {a.repeats}, interleaved")
    print("| case | ms a batch | ms an item |")
    print("|:--|--:|--:|")
    for name, t in times.items():
        print(f"| {name} | {1e3 * statistics.median(t):.1f} | {1e3 * statistics.median(t) / 64:.3f} |")
    ratio = statistics.median(next(iter(times.values()))) / statistics.median(list(times.values())[1])
    print(f"| **ratio** | **{ratio:.2f}x** | items bit-identical: {identical} |")


if __name__ == "__main__":
    main()
