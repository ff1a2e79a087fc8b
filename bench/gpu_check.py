"""The checks to run when a GPU is lent (driven by ``bench/gpu_check.sh``): exactness on the device, then speed.

1. **golden**: a randomly perturbed classifier (every path matters) on synthetic genes, in float64 on the device
   against the literal float64 re-implementation of the original (``tests/naive_reference.py``, run on the CPU):
   logits to 1e-10; float64 gradients of every parameter on the device against the CPU's; float32 logits on the
   device (TF32 off) against float64.
2. **epoch**: one epoch of the default config (batch 64, fused AdamW, cross-entropy) over ``--genes`` synthetic
   genes, float32 and under bf16 autocast, the same batches in the same order, after 3 untimed warm-up steps:
   samples/s with the loader (``--num-workers``) and with every batch already on the device (the model alone),
   peak GPU memory, inference samples/s at batch 256, and the largest logit difference of bf16 from float32.
   The same steps on ``--cpu-threads`` CPU threads of this machine (a few batches) give the CPU figure of the
   same run.

Prints one table per part; exits 1 if a golden check fails. ``--device cpu`` runs everything on the CPU (how the
script itself is tested where no GPU is lent). Usage::

    python bench/gpu_check.py [--device cuda] [--genes 4096] [--num-workers 4] [--cpu-threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from chromoformer import ChromoformerClassifier, ChromoformerConfig
from chromoformer.data import ChromoformerDataset, read_metadata
from chromoformer.data.loader import make_loader
from chromoformer.data.sources import open_source
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.engine.batches import to_device
from chromoformer.training.objective import fusable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from naive_reference import naive_forward, perturbed_model  # noqa: E402


def cast(batch: dict, dtype: torch.dtype) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = cast(v, dtype)
        elif torch.is_tensor(v) and v.is_floating_point():
            out[k] = v.to(dtype)
        else:
            out[k] = v
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def golden(ds: ChromoformerDataset, device: torch.device) -> bool:
    batch = next(iter(make_loader(ds, batch_size=12, num_workers=0)))
    cpu64 = perturbed_model().double()
    b64 = cast(batch, torch.float64)
    with torch.no_grad():
        ref = naive_forward(cpu64.state_dict(), b64)
    dev64 = perturbed_model().double().to(device)
    with torch.no_grad():
        ours = dev64(**to_device(b64, device)).cpu()
    for m, b in ((cpu64.train(), b64), (dev64.train(), to_device(b64, device))):
        m.zero_grad()
        m(**b).logsumexp(-1).sum().backward()
    grad = max((p.grad.cpu() - q.grad).abs().max().item() for p, q in zip(dev64.parameters(), cpu64.parameters(),
                                                                         strict=True) if q.grad is not None)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev32 = perturbed_model().to(device)
    with torch.no_grad():
        ours32 = dev32(**to_device(batch, device)).double().cpu()
    rows = [("float64 logits vs literal original (CPU)", (ours - ref).abs().max().item(), 1e-10),
            ("float64 gradients vs CPU float64", grad, 1e-10),
            ("float32 logits (TF32 off) vs float64", (ours32 - ref).abs().max().item(), 1e-4)]
    print(f"\ngolden checks on {device}")
    print(f"{'check':<44}{'max |diff|':>12}{'tolerance':>11}  result")
    for name, diff, tol in rows:
        print(f"{name:<44}{diff:>12.2e}{tol:>11.0e}  {'ok' if diff <= tol else 'FAILED'}")
    return all(d <= t for _, d, t in rows)


def train_steps(model, opt, batches, device: torch.device, bf16: bool) -> float:
    """Seconds for one pass of AdamW steps over ``batches`` (moved to ``device`` inside the timing)."""
    sync(device)
    t0 = time.perf_counter()
    for batch in batches:
        b = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(**b)
        loss = F.cross_entropy(out.float(), b["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0


def infer(model, batches, device: torch.device, bf16: bool) -> tuple[float, torch.Tensor]:
    model.eval()
    outs = []
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for batch in batches:
            outs.append(model(**to_device(batch, device)).float())
    sync(device)
    model.train()
    return time.perf_counter() - t0, torch.cat(outs).cpu()


def epoch(ds: ChromoformerDataset, device: torch.device, num_workers: int, cpu_threads: int) -> None:
    cfg = ChromoformerConfig()
    n = len(ds)
    loader = make_loader(ds, batch_size=cfg.bsz, num_workers=num_workers)
    host = list(make_loader(ds, batch_size=cfg.bsz, num_workers=0))
    big = list(make_loader(ds, batch_size=256, num_workers=0))
    print(f"\none epoch, default config, {n} synthetic genes, batch {cfg.bsz}, on {device}")
    print(f"{'case':<34}{'samples/s loader':>17}{'samples/s model':>16}{'infer/s b256':>13}{'peak MiB':>10}"
          f"{'max |logit diff|':>17}")
    ref_logits = None
    for name, bf16 in (("float32", False), ("bf16 autocast", True)):
        torch.manual_seed(0)
        model = ChromoformerClassifier().to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=fusable(model))
        on_dev = [to_device(b, device) for b in host]
        train_steps(model, opt, on_dev[:3], device, bf16)  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t_loader = train_steps(model, opt, loader, device, bf16)
        t_model = train_steps(model, opt, on_dev, device, bf16)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
        infer(model, big[:2], device, bf16)
        t_inf, logits = infer(model, big, device, bf16)
        if ref_logits is None:
            ref_model, ref_logits = model, logits
        else:  # bf16 logits of the float32-trained weights: the same model, only the arithmetic differs
            logits = infer(ref_model, big, device, True)[1]
        diff = (logits - ref_logits).abs().max().item()
        print(f"{name:<34}{n / t_loader:>17.1f}{n / t_model:>16.1f}{n / t_inf:>13.1f}{peak:>10.0f}{diff:>17.2e}")
    torch.set_num_threads(cpu_threads)
    model = ChromoformerClassifier().train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=fusable(model))
    few = host[:4]
    train_steps(model, opt, few[:1], torch.device("cpu"), False)
    t = train_steps(model, opt, few, torch.device("cpu"), False)
    t_inf, _ = infer(model, big[:2], torch.device("cpu"), False)
    k = sum(len(b["label"]) for b in few)
    print(f"{f'CPU float32, {cpu_threads} threads (same run)':<34}{'':>17}{k / t:>16.1f}"
          f"{sum(len(b['label']) for b in big[:2]) / t_inf:>13.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--genes", type=int, default=4096)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--cpu-threads", type=int, default=2)
    p.add_argument("--workdir", default=None)
    p.add_argument("--skip-epoch", action="store_true")
    a = p.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda":
        print(torch.cuda.get_device_name(device), "torch", torch.__version__)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-gpu-"))
    meta, npy = (wd / "meta.csv", wd / "npy") if (wd / "meta.csv").is_file() else \
        write_synthetic_dataset(wd, n_genes=a.genes, seed=0)
    cfg = ChromoformerConfig()
    ds = ChromoformerDataset(read_metadata(meta), open_source(npy, store=wd / "store", build=True,
                                                              n_feats=cfg.n_feats), cfg)
    ok = golden(ds, device)
    if not a.skip_epoch:
        epoch(ds, device, a.num_workers, a.cpu_threads)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
