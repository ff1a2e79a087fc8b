"""Loader workers started from a forkserver (chromoformer's choice) vs ``fork`` (PyTorch's default
on Linux, the baseline), in the same run: one pass over the dataset per "epoch", as training
and prediction make it, batches checked identical.

A pass pays the workers' start each time (loaders are made per epoch); the forkserver itself
starts once per process, on the first pass, and that first pass is reported apart.
Data: the real demo genes in ../shared when present, else synthetic genes.

    python bench/loader_workers.py --repeats 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from chromoformer.config import ChromoformerConfig
from chromoformer.data import ChromoformerDataset, read_metadata
from chromoformer.data.loader import worker_context
from chromoformer.data.sources import open_source
from chromoformer.data.synthetic import write_synthetic_dataset

DEMO = Path(__file__).resolve().parents[2] / "shared" / "reference-demo"


def dataset(tmp: Path) -> tuple[ChromoformerDataset, str]:
    cfg = ChromoformerConfig()
    if (DEMO / "demo_meta.csv").is_file():
        meta, npy, what = DEMO / "demo_meta.csv", DEMO / "demo_data", "demo (100 real genes)"
    else:
        meta, npy = write_synthetic_dataset(tmp, n_genes=100, seed=0)
        what = "synthetic (100 genes)"
    genes = read_metadata(meta, i_max=cfg.i_max, w_max=cfg.w_max)
    source = open_source(npy, store=tmp / "store", build=True, n_feats=cfg.n_feats, base=100)
    return ChromoformerDataset(genes, source, cfg, (100, 500, 2000), "clf"), what


def same(a: object, b: object) -> bool:
    """Batches equal exactly: tensors bit for bit, nested dicts and lists item by item."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def one_pass(ds: ChromoformerDataset, workers: int, method: str | None) -> tuple[float, list[dict]]:
    ctx = None if workers == 0 else (worker_context(workers) if method == "forkserver" else
                                     multiprocessing.get_context(method))
    t = time.perf_counter()
    out = list(DataLoader(ds, batch_size=8, num_workers=workers, multiprocessing_context=ctx))
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds, what = dataset(Path(tmp))
        _, want = one_pass(ds, 0, None)
        first = {m: one_pass(ds, 1, m)[0] for m in ("forkserver", "fork")}  # the forkserver starts here
        rows = []
        for workers in (0, 1, 2):
            for method in (("fork", "forkserver") if workers else ("-",)):
                times = []
                for _ in range(args.repeats):
                    t, got = one_pass(ds, workers, None if method == "-" else method)
                    assert same(got, want), f"{workers} workers ({method}): batches differ from num_workers=0"
                    times.append(t)
                rows.append((workers, method, statistics.median(times)))
    print(f"data: {what}, {len(ds)} genes, batch 8, median of {args.repeats} passes; batches identical in all\n")
    print(f"{'workers':>7}  {'start':<10}  {'pass (s)':>8}  {'vs fork':>7}")
    fork = {w: t for w, m, t in rows if m == "fork"}
    for w, m, t in rows:
        ratio = f"{t / fork[w]:.2f}x" if w else ""
        print(f"{w:>7}  {m:<10}  {t:8.3f}  {ratio:>7}")
    print(f"\nfirst pass of the process, 1 worker: forkserver {first['forkserver']:.2f} s (server start included), "
          f"fork {first['fork']:.2f} s")


if __name__ == "__main__":
    main()
