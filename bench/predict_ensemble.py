"""The fold-ensemble prediction: one pass of the data path per checkpoint (before) against one pass for all.

``chromoformer predict -k fold1/best.pt ... -k fold4/best.pt`` (the workflow's last step) used to run the
loader once per checkpoint, so every gene was read from the store and binned four times. Now each batch is
loaded once and run through every checkpoint (:func:`chromoformer.engine.batches.ensemble_batches`). Both
cases run here on the same synthetic genes through the binned store, with the same four default-config
checkpoints (randomly initialised, seeds 1-4: prediction costs the same whatever the weights), as the
workflow runs them: batch 256, ``--num-workers auto`` (one worker on 2 cores) and 2 threads. Each case is
its own process, the cases alternate, and the table shows the median of ``--repeats``; the outputs of the
two cases are compared bit for bit.

    python bench/predict_ensemble.py --genes 2048 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CASES = ("before: a pass per checkpoint", "after: one pass for all")


def setup(wd: Path, n_genes: int) -> None:
    from chromoformer.data.sources import open_source
    from chromoformer.data.synthetic import write_synthetic_dataset
    from chromoformer.engine.checkpoint import save_checkpoint, spec_fields
    from chromoformer.model import build_model
    from chromoformer.spec import RunSpec

    meta, npy = write_synthetic_dataset(wd, n_genes=n_genes, seed=0)
    spec = RunSpec()
    open_source(npy, store=wd / "store", build=True, n_feats=spec.config.n_feats)
    for k in range(1, 5):
        torch.manual_seed(k)
        model = build_model(spec.task, spec.config, spec.binsizes, spec.arch)
        save_checkpoint({"net": model.state_dict(), **spec_fields(spec)}, wd / f"fold{k}.pt")


def run_case(wd: Path, case: int, batch: int, workers: int | None, threads: int) -> None:
    """One case in this process; prints its wall seconds and writes its outputs to ``wd/out{case}.npy``."""
    from chromoformer.data import ChromoformerDataset, read_metadata
    from chromoformer.data.loader import make_loader
    from chromoformer.data.sources import open_source
    from chromoformer.engine.batches import predict_batches
    from chromoformer.engine.runtime import Runtime
    from chromoformer.inference.predict import load_ensemble, predict_genes

    torch.set_num_threads(threads)
    ks = [wd / f"fold{k}.pt" for k in range(1, 5)]
    t0 = time.perf_counter()
    models = load_ensemble(ks)
    spec = models[0].spec
    genes = read_metadata(wd / "meta.csv", i_max=spec.config.i_max, w_max=spec.config.w_max)
    source = open_source(wd / "npy", store=wd / "store", build=False, n_feats=spec.config.n_feats)
    if case == 0:  # the loop predict_genes ran before: the loader once per checkpoint
        ds = ChromoformerDataset(genes, source, spec.config, spec.binsizes, spec.task)
        ds.validate()
        outs = [predict_batches(m.model, make_loader(ds, batch_size=batch, num_workers=workers),
                                torch.device("cpu"))[0] for m in models]
        out = np.stack(outs)
    else:
        frame = predict_genes(models, genes, source, runtime=Runtime(batch_size=batch, num_workers=workers))
        out = frame[["logit_0", "logit_1"]].to_numpy()
    seconds = time.perf_counter() - t0
    np.save(wd / f"out{case}.npy", out)
    print(f"{seconds:.3f}")


def logits_of(wd: Path, case: int) -> np.ndarray:
    """Both cases' outputs as the ensemble's mean logits, (N, 2), averaged the way ``ensemble_frame`` does."""
    from chromoformer.inference.predict import ensemble_frame

    out = np.load(wd / f"out{case}.npy")
    if case == 0:
        ids = [str(i) for i in range(out.shape[1])]
        return ensemble_frame(ids, list(out), "clf")[["logit_0", "logit_1"]].to_numpy()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--workers", default="auto", help="loader workers, or auto (the workflow's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default=None)
    p.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    workers = None if a.workers == "auto" else int(a.workers)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-predict-ensemble-"))
    if a.case is not None:
        run_case(wd, a.case, a.batch, workers, a.threads)
        return
    if not (wd / "fold4.pt").is_file():
        setup(wd, a.genes)
    times: dict[int, list[float]] = {0: [], 1: []}
    loads = []
    for _ in range(a.repeats):
        for case in (0, 1):
            loads.append(os.getloadavg()[0])
            r = subprocess.run([sys.executable, __file__, "--workdir", str(wd), "--case", str(case), "--batch",
                                str(a.batch), "--workers", a.workers, "--threads", str(a.threads)],
                               capture_output=True, text=True, check=True)
            times[case].append(float(r.stdout.split()[-1]))
    same = np.array_equal(logits_of(wd, 0), logits_of(wd, 1))
    n = len(np.load(wd / "out1.npy"))
    print(f"\n{n} genes x 4 checkpoints, batch {a.batch}, workers {a.workers}, {a.threads} threads; "
          f"load average before each case {min(loads):.2f}-{max(loads):.2f}; median of {a.repeats}, interleaved")
    print("| case | wall s (load + predict) | genes/s | runs |")
    print("|:--|--:|--:|:--|")
    for case, name in enumerate(CASES):
        m = statistics.median(times[case])
        print(f"| {name} | {m:.1f} | {n / m:.0f} | {', '.join(f'{t:.1f}' for t in times[case])} |")
    ratio = statistics.median(times[0]) / statistics.median(times[1])
    print(f"| **ratio** | **{ratio:.2f}x** | | mean logits bit-identical: {same} |")


if __name__ == "__main__":
    main()
