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

Then the whole step's cost as the pCRE count per gene and the batch size change. Usage::

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
from torch.utils.flop_counter import FlopCounterMode

from chromoformer.config import load_config
from chromoformer.data import ChromoformerDataset, read_metadata
from chromoformer.data.loader import make_loader
from chromoformer.data.signal import open_source
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.model import build_model


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


def matmul_roofline(n: int, repeats: int) -> float:
    """GFLOP/s of an fp32 (n x n) @ (n x n)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: a @ b, repeats) / 1e9


def capture(model: torch.nn.Module, batch: dict, names: list[str]) -> dict[str, tuple[tuple, dict]]:
    """The (args, kwargs) each named module was called with in one forward pass (first call only)."""
    mods, seen, hooks = dict(model.named_modules()), {}, []
    for n in names:
        def pre(mod, args, kwargs, n=n):
            seen.setdefault(n, (tuple(a.detach() if torch.is_tensor(a) else a for a in args), dict(kwargs)))
        hooks.append(mods[n].register_forward_pre_hook(pre, with_kwargs=True))
    with torch.no_grad():
        model(**batch)
    for h in hooks:
        h.remove()
    return seen


def run_call(mod: torch.nn.Module, args: tuple, kwargs: dict, train: bool) -> Callable[[], object]:
    def step():
        if not train:
            with torch.no_grad():
                return mod(*args, **kwargs)
        a = tuple(x.clone().requires_grad_(True) if torch.is_tensor(x) and x.is_floating_point() else x
                  for x in args)
        out = mod(*a, **kwargs)
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


def profile(model, batch, opt, loader_fn, train: bool, repeats: int) -> list[tuple[str, float, int]]:
    rows = []
    names = [n for ns in groups(model).values() for n in ns]
    calls = capture(model, batch, names)
    mods = dict(model.named_modules())
    for label, ns in groups(model).items():
        # every layer of a stack is called once per step: sum over the layers of that group
        fns = [run_call(mods[n], *calls[n], train) for n in ns if n in calls]
        rows.append((label, sum(median_time(f, repeats) for f in fns), sum(flops(f) for f in fns)))

    def full():
        if train:
            opt.zero_grad(set_to_none=True)
            out = model(**batch)
            torch.nn.functional.cross_entropy(out, batch["label"]).backward()
        else:
            with torch.no_grad():
                model(**batch)

    total, total_flops = median_time(full, repeats), flops(full)
    inside = sum(t for lab, t, _ in rows if "layer norm" not in lab)
    rows.append(("glue (masks, gathers, tokens)", max(total - inside, 0.0),
                 total_flops - sum(f for lab, _, f in rows if "layer norm" not in lab)))
    rows.append(("= model forward" + (" + backward" if train else ""), total, total_flops))
    if train:
        full()
        rows.append(("optimizer (AdamW step)", median_time(opt.step, repeats), 0))
    rows.append(("data (one batch from the store)", median_time(loader_fn, repeats), 0))
    return rows


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
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
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
        rows = profile(model, batch, opt, loader_fn, train, a.repeats)
        total = next(t for lab, t, _ in rows if lab.startswith("="))
        print(f"\n{mode} (samples/s {a.batch / total:.1f} for the model alone)")
        print(f"{'group':<42}{'ms':>9}{'% step':>8}{'GFLOP':>9}{'GFLOP/s':>9}{'% roof':>8}")
        for lab, t, f in rows:
            rate = f / t / 1e9 if t > 0 and f else 0.0
            print(f"{lab:<42}{t * 1e3:>9.1f}{100 * t / total:>8.1f}{f / 1e9:>9.2f}{rate:>9.1f}"
                  f"{100 * rate / peak:>8.1f}")
    model.train(True)
    print("\nwhole training step vs pCREs per gene and batch size (model forward + backward + AdamW)")
    by_n: dict[int, list] = {}
    for g in genes:
        by_n.setdefault(len(g.pcres), []).append(g)

    def step_time(gs: list) -> float:
        b = next(iter(make_loader(ChromoformerDataset(gs, src, cfg), batch_size=len(gs), num_workers=0)))

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(**b), b["label"]).backward()
            opt.step()
        return median_time(step, a.repeats)

    print(f"{'pCREs/gene':>10}{'batch':>7}{'ms/step':>9}{'samples/s':>11}")
    for n in sorted(by_n):
        gs = by_n[n][:32]
        if len(gs) == 32:
            t = step_time(gs)
            print(f"{n:>10}{32:>7}{t * 1e3:>9.1f}{32 / t:>11.1f}")
    for bsz in (16, 32, 64, 128):
        if bsz <= len(genes):
            t = step_time(genes[:bsz])
            print(f"{'mixed':>10}{bsz:>7}{t * 1e3:>9.1f}{bsz / t:>11.1f}")


if __name__ == "__main__":
    main()
