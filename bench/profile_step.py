"""Where a training step and an inference batch of the default config spend their time, against a matmul roofline.

One process, ``--threads`` torch threads, default config, synthetic genes (``write_synthetic_dataset``) read
through the binned store as training reads them. Every operator group's call is captured from one real step
(forward hooks record its inputs), then re-run alone: forward + backward (a unit gradient) for training,
forward under ``no_grad`` for inference, median of ``--repeats``. FLOPs of the same call come from
``torch.utils.flop_counter.FlopCounterMode`` (matmuls, linear layers, attention; element-wise work counts 0,
so layer norm and masking show time without FLOPs). The roofline is a plain fp32 ``torch.mm`` measured in
the same run at the sizes the model multiplies (B*T x d x d). Groups:

* ``embedding.<b>`` / ``pairwise.<b>`` / ``regulation.<b>``: the transformers per bin size, split into
  ``attention`` (the whole MultiHeadAttention: its projections, scores, softmax, residual, layer norm) and
  ``feed-forward`` (two linears, ReLU, residual, layer norm); ``layer norm`` is timed apart too (a part of both);
* ``head``: the classifier; ``glue``: what the full step spends outside the groups above (masks from spans,
  gathering pCRE features, token assembly); ``optimizer``: AdamW's step; ``data``: building one batch.

For every group the matrix multiplications its call executes (``aten.mm/addmm/bmm/baddbmm``, forward and
backward, recorded with a ``TorchDispatchMode``) are also replayed alone on fresh tensors of the same shapes
and strides: "GEMM alone" is the time those bare matmuls take, so "GEMM-alone % roof" is the ceiling the group
could reach with every non-matmul cost (softmax, masks, layer norm, copies, dispatch) removed. A group whose
ceiling is below 60% of the roofline cannot reach 60% whatever is fused around its matmuls.

Then the whole step's cost as the pCRE count per gene and the batch size change: every case is warmed up
once, then the cases are timed in turn (interleaved), ``--repeats`` rounds, median per case. Usage::

    python bench/profile_step.py [--threads 2] [--batch 64] [--repeats 5] [--genes 480]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from chromoformer.config import load_config
from chromoformer.data import ChromoformerDataset, read_metadata
from chromoformer.data.loader import make_loader
from chromoformer.data.sources import open_source
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.model import build_model
from chromoformer.training.objective import fusable


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


MATMULS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
            torch.ops.aten.baddbmm.default}


class GemmRecorder(TorchDispatchMode):
    """Records (op, [(shape, stride) of each tensor argument]) of every matmul dispatched inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATMULS:
            self.calls.append((func, [(tuple(a.shape), a.stride()) if torch.is_tensor(a) else a for a in args]))
        return func(*args, **(kwargs or {}))


def gemm_replay(fn: Callable[[], object]) -> Callable[[], None]:
    """A function that runs only the matmuls ``fn`` executes, on fresh tensors of the same shapes and strides."""
    rec = GemmRecorder()
    with rec:
        fn()
    calls = [(op, [_like(*a) if isinstance(a, tuple) else a for a in spec]) for op, spec in rec.calls]

    def replay() -> None:
        for op, args in calls:
            op(*args)
    replay.flops = sum(_mm_flops(op, [a.shape for a in args if torch.is_tensor(a)]) for op, args in calls)
    return replay


def _like(shape: tuple, stride: tuple) -> torch.Tensor:
    """Random values laid out exactly as a recorded argument (strided views and broadcasts included)."""
    size = 1 + sum((n - 1) * st for n, st in zip(shape, stride, strict=True) if n > 0)
    return torch.randn(size).as_strided(shape, stride)


def _mm_flops(op, shapes: list) -> int:
    a, b = shapes[-2], shapes[-1]  # addmm/baddbmm: (bias, a, b)
    if op in (torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default):
        return 2 * a[0] * a[1] * a[2] * b[2]
    return 2 * a[0] * a[1] * b[1]


def matmul_roofline(n: int, repeats: int) -> float:
    """GFLOP/s of an fp32 (n x n) @ (n x n)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: a @ b, repeats) / 1e9


def capture(model: torch.nn.Module, batch: dict, names: list[str]) -> dict[str, tuple[str, tuple, dict]]:
    """(method, args, kwargs) each named module was called with in one forward pass (first call only).

    The pairwise attentions are called through ``forward_factored``, not ``__call__``, so module hooks never see
    them: that method is wrapped on the instance for the pass instead.
    """
    mods, seen, hooks, patched = dict(model.named_modules()), {}, [], []

    def keep(a: object) -> object:
        return a.detach() if torch.is_tensor(a) else a

    for n in names:
        mod = mods[n]
        if hasattr(mod, "forward_factored"):
            def wrapped(*args, _n=n, _f=mod.forward_factored, **kwargs):
                seen.setdefault(_n, ("forward_factored", tuple(keep(a) for a in args), dict(kwargs)))
                return _f(*args, **kwargs)
            mod.forward_factored = wrapped
            patched.append(mod)
            continue

        def pre(mod, args, kwargs, n=n):
            seen.setdefault(n, ("__call__", tuple(keep(a) for a in args), dict(kwargs)))
        hooks.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
    with torch.no_grad():
        model(**batch)
    for h in hooks:
        h.remove()
    for mod in patched:
        del mod.forward_factored  # back to the class's method
    return seen


def run_call(mod: torch.nn.Module, method: str, args: tuple, kwargs: dict, train: bool) -> Callable[[], object]:
    call = getattr(mod, method)

    def step():
        if not train:
            with torch.no_grad():
                return call(*args, **kwargs)
        a = tuple(x.clone().requires_grad_(True) if torch.is_tensor(x) and x.is_floating_point() else x
                  for x in args)
        out = call(*a, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        out.backward(torch.ones_like(out))
    return step


def groups(model: torch.nn.Module) -> dict[str, list[str]]:
    """Group label -> module names (of the first call's modules) whose calls make it."""
    out: dict[str, list[str]] = {}
    for name, mod in model.named_modules():
        parts = name.split(".")
        if len(parts) < 2 or parts[0] not in ("embed", "pairwise_interaction", "regulation"):
            continue
        stack = {"embed": "embedding", "pairwise_interaction": "pairwise", "regulation": "regulation"}[parts[0]]
        kind = type(mod).__name__
        label = {"MultiHeadAttention": "attention", "PairwiseMultiHeadAttention": "attention",
                 "FeedForward": "feed-forward", "LayerNorm": "layer norm"}.get(kind)
        if label and not name.endswith("pairwise_interaction." + parts[1] + ".ln"):  # the unused LN
            out.setdefault(f"{stack}.{parts[1]} {label}", []).append(name)
    out["head"] = ["fc_head"]
    return out


Row = tuple[str, float, int, float]  # label, seconds, FLOPs, seconds of its matmuls alone (0: none)


def profile(model, batch, opts: dict, loader_fn, train: bool, repeats: int) -> list[Row]:
    """One row per operator group, then glue, the whole model call, the optimisers and the data path."""
    rows: list[Row] = []
    names = [n for ns in groups(model).values() for n in ns]
    calls = capture(model, batch, names)
    mods = dict(model.named_modules())
    for label, ns in groups(model).items():
        # every layer of a stack is called once per step: sum over the layers of that group
        fns = [run_call(mods[n], *calls[n], train) for n in ns if n in calls]
        gemms = [gemm_replay(f) for f in fns]
        rows.append((label, sum(median_time(f, repeats) for f in fns), sum(flops(f) for f in fns),
                     sum(median_time(g, repeats) for g in gemms)))
    opt = next(iter(opts.values()))

    def full():
        if train:
            opt.zero_grad(set_to_none=True)
            out = model(**batch)
            torch.nn.functional.cross_entropy(out, batch["label"]).backward()
        else:
            with torch.no_grad():
                model(**batch)

    total, total_flops, total_gemm = median_time(full, repeats), flops(full), median_time(gemm_replay(full), repeats)
    parts = [r for r in rows if "layer norm" not in r[0]]
    rows.append(("glue (masks, gathers, tokens)", max(total - sum(r[1] for r in parts), 0.0),
                 total_flops - sum(r[2] for r in parts), max(total_gemm - sum(r[3] for r in parts), 0.0)))
    rows.append(("= model forward" + (" + backward" if train else ""), total, total_flops, total_gemm))
    if train:
        for name, o in opts.items():
            full()
            rows.append((f"optimizer ({name})", median_time(o.step, repeats), 0, 0.0))
    rows.append(("data (one batch from the store)", median_time(loader_fn, repeats), 0, 0.0))
    return rows


def print_rows(rows: list[Row], peak: float) -> None:
    total = next(r[1] for r in rows if r[0].startswith("="))
    print(f"{'group':<44}{'ms':>8}{'% step':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'% roof':>8}"
          f"{'GEMM ms':>9}{'GEMM % roof':>12}")
    for lab, t, f, g in rows:
        rate = f / t / 1e9 if t > 0 and f else 0.0
        ceil = f / g / 1e9 if g > 0 and f else 0.0
        print(f"{lab:<44}{t * 1e3:>8.1f}{100 * t / total:>8.1f}{f / 1e9:>8.2f}{rate:>9.1f}{100 * rate / peak:>8.1f}"
              + (f"{g * 1e3:>9.1f}{100 * ceil / peak:>12.1f}" if g > 0 else ""))


def interleaved(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per case: every case warmed up once, then ``repeats`` rounds of one run of each in turn."""
    for fn in cases.values():
        fn()
    ts: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--genes", type=int, default=480)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-profile-"))
    meta, npy = (wd / "meta.csv", wd / "npy") if (wd / "meta.csv").is_file() else \
        write_synthetic_dataset(wd, n_genes=a.genes, seed=0)
    cfg = load_config()
    genes = read_metadata(meta, i_max=cfg.i_max, w_max=cfg.w_max)
    src = open_source(npy, store=wd / "store", build=True, n_feats=cfg.n_feats)
    ds = ChromoformerDataset(genes, src, cfg)
    it = iter(make_loader(ds, batch_size=a.batch, num_workers=0))
    batch = next(it)
    model = build_model("clf", cfg)
    opts = {"AdamW fused, kept": torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=fusable(model)),
            "AdamW for-loop, before": torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=False)}
    sub = ChromoformerDataset(genes[: a.batch], src, cfg)
    loader_fn = lambda: next(iter(make_loader(sub, batch_size=a.batch, num_workers=0)))  # noqa: E731
    roof = {n: matmul_roofline(n, a.repeats) for n in (256, 512, 1024)}
    load = os.getloadavg()[0]
    print(f"\n{a.threads} threads, batch {a.batch}, {int(batch['n_pcres'].sum())} pCREs in the batch, load "
          f"average {load:.2f}; fp32 matmul roofline (same run): "
          + ", ".join(f"{n}^3 {g:.0f} GFLOP/s" for n, g in roof.items()))
    peak = max(roof.values())
    for mode, train in (("training step", True), ("inference batch", False)):
        model.train(train)
        rows = profile(model, batch, opts, loader_fn, train, a.repeats)
        total = next(r[1] for r in rows if r[0].startswith("="))
        print(f"\n{mode} (samples/s {a.batch / total:.1f} for the model alone)")
        print_rows(rows, peak)
    model.train(True)
    print("\nwhole training step vs pCREs per gene and batch size (model forward + backward + fused AdamW;"
          f" interleaved, median of {a.repeats})")
    opt = opts["AdamW fused, kept"]
    by_n: dict[int, list] = {}
    for g in genes:
        by_n.setdefault(len(g.pcres), []).append(g)

    def step_of(gs: list) -> Callable[[], None]:
        b = next(iter(make_loader(ChromoformerDataset(gs, src, cfg), batch_size=len(gs), num_workers=0)))

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(**b), b["label"]).backward()
            opt.step()
        return step

    cases = {(str(n), 32): step_of(by_n[n][:32]) for n in sorted(by_n) if len(by_n[n]) >= 32}
    cases |= {("mixed", bsz): step_of(genes[:bsz]) for bsz in (16, 32, 64, 128) if bsz <= len(genes)}
    times = interleaved(cases, a.repeats)
    print(f"{'pCREs/gene':>10}{'batch':>7}{'ms/step':>9}{'samples/s':>11}")
    for (n, bsz), t in times.items():
        print(f"{n:>10}{bsz:>7}{t * 1e3:>9.1f}{bsz / t:>11.1f}")

if __name__ == "__main__":
    main()
