"""Speed levers for training and inference, each against the plain float32 run in the same run.

Each case runs in its own process on the same synthetic genes (default config, batch 64,
data loading included, ``num_workers=0``), ``--repeats`` times; the table gives the median
samples/s, the ratio to the baseline (float32, ``--threads`` torch threads, eager) and how
far the case's numbers move from the baseline's:

* inference: max |logit difference| over ``--genes`` genes;
* training: max |weight difference| after ``--train-steps`` AdamW steps from the same
  initial weights (lr 3e-5), and the relative change of the last step's loss.

Levers: 1 thread instead of 2; bf16 autocast (``torch.autocast('cpu', torch.bfloat16)``; on
CUDA the same with 'cuda'); ``torch.compile`` (inductor, the compile time reported apart and
not in samples/s); inference batch 256 instead of 64. A lever is worth keeping only where it
is faster *and* its difference stays inside the tolerance the project documents for
equal outputs (1e-4 on logits). Usage::

    python bench/speed_levers.py [--threads 2] [--repeats 3] [--genes 384] [--train-steps 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {  # name: (threads or None = --threads, autocast, compile, inference batch)
    "baseline float32": (None, False, False, 64),
    "1 thread": (1, False, False, 64),
    "bf16 autocast": (None, True, False, 64),
    "torch.compile": (None, False, True, 64),
    "inference batch 256": (None, False, False, 256),
}


def worker(data: Path, mode: str, autocast: bool, compile_: bool, batch: int, steps: int, device: str,
           out: Path) -> dict:
    import numpy as np
    import torch

    from chromoformer import ChromoformerClassifier, ChromoformerConfig
    from chromoformer.data import BinnedStore, ChromoformerDataset, read_metadata
    from chromoformer.engine.batches import to_device

    torch.manual_seed(42)
    model = ChromoformerClassifier().to(device)
    ds = ChromoformerDataset(read_metadata(data / "meta.csv"), BinnedStore(data / "store"), ChromoformerConfig())
    net = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    def amp():  # bf16 autocast for this case, else nothing
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    compile_s = 0.0
    if mode == "infer":
        model.eval()
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=0)
        t = time.perf_counter()
        with torch.no_grad(), amp():
            net(**to_device(next(iter(loader)), device))  # warm-up (and compilation), not timed
        compile_s = time.perf_counter() - t
        outs, t = [], time.perf_counter()
        with torch.no_grad(), amp():
            for b in loader:
                outs.append(net(**to_device(b, device)).float().cpu())
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt, n = time.perf_counter() - t, len(ds)
        np.save(out, torch.cat(outs).numpy())
        return {"samples_per_s": n / dt, "compile_s": compile_s}
    model.train()
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=False, drop_last=True, num_workers=0)
    batches = [to_device(b, device) for b, _ in zip(loader, range(steps + 1), strict=False)]
    if len(batches) < steps + 1:
        raise SystemExit(f"{len(ds)} genes give {len(batches)} batches of 64; --train-steps {steps} needs {steps + 1}")

    def step(b):
        with amp():
            loss = torch.nn.functional.cross_entropy(net(**b).float(), b["label"])  # .float(): no-op in float32
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    t = time.perf_counter()
    step(batches[0])  # warm-up (and compilation), not timed; it is a real step, the same in every case
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    losses = [step(b) for b in batches[1:]]
    dt = time.perf_counter() - t
    np.save(out, torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()]).numpy())
    return {"samples_per_s": 64 * len(losses) / dt, "compile_s": compile_s, "last_loss": losses[-1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--genes", type=int, default=384)
    p.add_argument("--train-steps", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a, _ = p.parse_known_args()
    if a.worker:
        import torch

        w = json.loads(a.worker)
        torch.set_num_threads(w.pop("threads"))
        print(json.dumps(worker(**{**w, "data": Path(w["data"]), "out": Path(w["out"])})))
        return
    import numpy as np
    import pandas as pd

    from chromoformer.data.sources import build_store_from_npy
    from chromoformer.data.synthetic import write_synthetic_dataset

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_synthetic_dataset(data, n_genes=a.genes, seed=0)
        build_store_from_npy(data / "npy", data / "store")
        for mode in ("infer", "train"):
            ref = None
            for name in a.cases:
                threads, autocast, compile_, batch = CASES[name]
                if mode == "train" and batch != 64:
                    continue
                runs = []
                for r in range(a.repeats):
                    out = data / f"{mode}-{r}-{name.replace(' ', '_')}.npy"
                    spec = {"data": str(data), "mode": mode, "autocast": autocast, "compile_": compile_,
                            "batch": batch, "steps": a.train_steps, "device": a.device, "out": str(out),
                            "threads": threads or a.threads}
                    env = {**os.environ, "OMP_NUM_THREADS": str(threads or a.threads)}
                    res = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                                         capture_output=True, text=True)
                    if res.returncode:
                        raise SystemExit(f"{mode} {name} failed:\n{res.stderr[-3000:]}")
                    runs.append({**json.loads(res.stdout.strip().splitlines()[-1]), "values": np.load(out)})
                sps = statistics.median(x["samples_per_s"] for x in runs)
                if ref is None:
                    ref = {"sps": sps, "values": runs[0]["values"], "loss": runs[0].get("last_loss")}
                diff = float(np.abs(runs[0]["values"] - ref["values"]).max())
                rows.append({
                    "mode": mode, "case": name, "samples/s": sps, "vs baseline": sps / ref["sps"],
                    "compile/warm-up s": statistics.median(x["compile_s"] for x in runs),
                    "max |diff|": diff,
                    "loss rel diff": (abs(runs[0]["last_loss"] - ref["loss"]) / abs(ref["loss"])
                                      if mode == "train" else float("nan")),
                    "repeat spread": (max(x["samples_per_s"] for x in runs) - min(x["samples_per_s"] for x in runs))
                    / sps,
                })
                print(rows[-1] | {"values": None}, file=sys.stderr, flush=True)
    print(f"\n{a.genes} synthetic genes, default config, device {a.device}, baseline = float32 eager with "
          f"{a.threads} threads in the same run, median of {a.repeats} processes each\n")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
