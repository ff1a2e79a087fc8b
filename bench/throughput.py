"""Train and inference throughput and peak RSS: this package vs the original chromoformer 1.1.3.

Both run the default config at batch 64 with the same torch thread count, in the same
run, on the same data, each case in its own process (so peak RSS is its own). Numbers
are end to end: data loading (num_workers=0) + forward (+ backward + AdamW step).
The original's hard-coded ``.cuda()`` calls are turned into no-ops; its train.py
``set_detect_anomaly(True)`` is *not* enabled, which favours the original.

Usage (the original is installed only for this, into a private folder)::

    pip install --no-deps --target .cache/original-1.1.3 chromoformer==1.1.3
    python bench/throughput.py [--threads 2] [--genes 192] [--train-steps 3] [--repeats 3] [--ours-steps-factor K]

The cases are interleaved: each repeat runs original infer, ours infer, original train, ours train in turn,
so a slow spell of the machine hits both sides. Each case prints the 1-minute load average at its start; the
table gives the median samples/s over repeats, the ratio of the medians, the spread of the per-repeat ratios
and the load range. Ours steps with fused AdamW where the trainer does (``training.objective.fusable``); the
original with its own ``torch.optim.AdamW`` defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BSZ = 64


def _orig_kws() -> dict:
    return dict(
        n_feats=7, d_emb=128, d_head=128,
        embed_kws={"n_layers": 1, "n_heads": 2, "d_model": 128, "d_ff": 128},
        pairwise_interaction_kws={"n_layers": 2, "n_heads": 2, "d_model": 128, "d_ff": 256},
        regulation_kws={"n_layers": 6, "n_heads": 8, "d_model": 256, "d_ff": 256},
    )


def worker(impl: str, mode: str, data: Path, steps: int, site: str) -> dict:
    """Runs in a child process; returns samples/s and peak RSS."""
    import pandas as pd
    import torch

    meta, npy = data / "meta.csv", data / "npy"
    genes = pd.read_csv(meta).gene_id.tolist()
    if impl == "original":
        sys.path.insert(0, site)
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
        import chromoformer as orig

        assert site in orig.__file__
        model = orig.ChromoformerClassifier(**_orig_kws())
        ds = orig.ChromoformerDataset(str(meta), str(npy), genes)

        def call(b):
            return model(b["promoter_feats"], b["promoter_pad_masks"], b["pcre_feats"], b["pcre_pad_masks"],
                         b["interaction_masks"], b["interaction_freq"])
    else:
        from chromoformer import ChromoformerClassifier, ChromoformerConfig
        from chromoformer.data import ChromoformerDataset, build_store_from_npy, read_metadata  # both trees' face

        store = build_store_from_npy(npy, data / "store") if not (data / "store").exists() else None
        from chromoformer.data import BinnedStore

        store = BinnedStore(data / "store")
        torch.manual_seed(42)
        model = ChromoformerClassifier()
        ds = ChromoformerDataset(read_metadata(meta), store, ChromoformerConfig())

        def call(b):
            return model(**b)

    loader = torch.utils.data.DataLoader(ds, batch_size=BSZ, shuffle=False, drop_last=True, num_workers=0)
    if impl == "original":
        opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    else:
        from chromoformer.training.objective import fusable

        opt = torch.optim.AdamW(model.parameters(), lr=3e-5, fused=fusable(model))

    def step(b):
        if mode == "train":
            loss = torch.nn.functional.cross_entropy(call(b), b["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                call(b)

    model.train(mode == "train")
    it = iter(loader)
    step(next(it))  # warm-up, not timed
    n, t0 = 0, time.perf_counter()
    for _ in range(steps):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        step(b)
        n += BSZ
    dt = time.perf_counter() - t0
    return {"samples_per_s": n / dt, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_case(impl: str, mode: str, data: Path, steps: int, threads: int, site: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, mode, "--data", str(data), "--steps", str(steps),
           "--original-site", site]
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    if r.returncode:
        raise RuntimeError(f"{impl} {mode} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--genes", type=int, default=192)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--infer-steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ours-steps-factor", type=int, default=1,
                   help="ours runs this many times the steps of the original (samples/s is per sample; more steps "
                        "only give our ~40x faster cases a timing window as long as the original's)")
    p.add_argument("--original-site", default=str(ROOT / ".cache" / "original-1.1.3"))
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        print(json.dumps(worker(a.worker[0], a.worker[1], Path(a.data), a.steps, a.original_site)))
        return
    if not (Path(a.original_site) / "chromoformer" / "net.py").is_file():
        sys.exit(f"original package not found in {a.original_site}; see the usage in this file's docstring")
    from chromoformer.data.synthetic import write_synthetic_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_synthetic_dataset(data, n_genes=a.genes, seed=0)
        (data / "meta.csv").exists() or sys.exit("no data")
        res: dict[tuple[str, str], list[dict]] = {}
        for r in range(a.repeats):
            for mode, steps in (("infer", a.infer_steps), ("train", a.train_steps)):
                for impl in ("original", "ours"):
                    load = os.getloadavg()[0]
                    n = steps * (a.ours_steps_factor if impl == "ours" else 1)
                    out = run_case(impl, mode, data, n, a.threads, a.original_site) | {"load": load}
                    res.setdefault((mode, impl), []).append(out)
                    print(f"repeat {r + 1} {mode:<5} {impl:<8} {out['samples_per_s']:8.2f} samples/s  "
                          f"load {load:.2f}", flush=True)
    print(f"\nbatch {BSZ}, default config, {a.threads} threads, {a.genes} synthetic genes, {a.repeats} interleaved "
          f"repeats (median); steps a case: original {a.train_steps} train / {a.infer_steps} infer, ours x"
          f"{a.ours_steps_factor}; baseline = original chromoformer 1.1.3 in the same run; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(f"{'mode':<6}{'original samples/s':>19}{'ours samples/s':>16}{'speed-up':>10}{'ratio range':>15}"
          f"{'orig peak RSS MiB':>19}{'ours peak RSS MiB':>19}{'load':>12}")
    for mode in ("infer", "train"):
        o, u = res[(mode, "original")], res[(mode, "ours")]
        mo, mu = (statistics.median(x["samples_per_s"] for x in rs) for rs in (o, u))
        ratios = [y["samples_per_s"] / x["samples_per_s"] for x, y in zip(o, u, strict=True)]
        loads = [x["load"] for x in o + u]
        print(f"{mode:<6}{mo:>19.2f}{mu:>16.2f}{mu / mo:>9.1f}x{min(ratios):>7.1f}-{max(ratios):<6.1f}"
              f"{max(x['peak_rss_mib'] for x in o):>19.0f}{max(x['peak_rss_mib'] for x in u):>19.0f}"
              f"{min(loads):>6.2f}-{max(loads):.2f}")

if __name__ == "__main__":
    main()
