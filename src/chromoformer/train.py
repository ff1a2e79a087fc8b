"""Train Chromoformer with chromosome-wise cross-validation (SPEC §3.5, §4).

Kept from the original: the flags, AdamW(lr), StepLR(1, gamma) per epoch, CE / MSE on
log2(RPKM + 1), the fold -> held-out split mapping and the checkpoint keys. Fixed:
all ``num_epoch`` epochs run, ``--binsizes`` are ints, the regression validation loss
does not broadcast, no anomaly detection, best and last checkpoints are written
atomically, ``--resume`` continues an interrupted run, and the run is deterministic
on CPU for a fixed seed (the shuffle order of epoch e depends only on seed and e).

Run as ``python -m chromoformer.train`` or ``chromoformer train``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from chromoformer import __version__
from chromoformer.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from chromoformer.config import DEFAULT_BINSIZES, ChromoformerConfig, load_config
from chromoformer.data import ChromoformerDataset, Gene, read_metadata
from chromoformer.data.store import default_store_path, open_source
from chromoformer.io import write_table
from chromoformer.metrics import classification_metrics, main_metric, regression_metrics
from chromoformer.model import ARCHS, build_model
from chromoformer.predict import predict_batches, to_device

log = logging.getLogger("chromoformer.train")  # not __name__: also run as __main__


def held_out_split(fold: int) -> int:
    """The original's mapping: fold 1..3 validate on split 1..3; fold 4 or 0 on split 4."""
    if not 0 <= fold <= 4:
        raise ValueError(f"--fold must be 0..4, got {fold}")
    return (fold + 3) % 4 + 1


def split_genes(genes: list[Gene], fold: int) -> tuple[list[Gene], list[Gene]]:
    """(train, validation) genes for a fold; every gene needs a ``split`` in 1..4."""
    val_split = held_out_split(fold)
    for g in genes:
        if g.split not in (1, 2, 3, 4):
            raise ValueError(f"gene {g.gene_id} (line {g.line}): split must be 1..4, got {g.split}")
    return [g for g in genes if g.split != val_split], [g for g in genes if g.split == val_split]


def loss_fn(out: torch.Tensor, label: torch.Tensor, task: str) -> torch.Tensor:
    """Cross-entropy on 2 logits, or MSE on (B, 1) against (B,) targets (no broadcasting)."""
    if task == "clf":
        return F.cross_entropy(out, label)
    return F.mse_loss(out[:, 0], label)


def score(out: np.ndarray, task: str) -> np.ndarray:
    """softmax P(class 1) for a classifier, the predicted value for a regressor; (N,)."""
    if task == "clf":
        return torch.softmax(torch.from_numpy(out), dim=1)[:, 1].numpy()
    return out[:, 0]


def evaluate(out: np.ndarray, label: np.ndarray, task: str) -> dict[str, float]:
    s = score(out, task)
    loss = loss_fn(torch.from_numpy(out), torch.from_numpy(label), task).item() if len(out) else math.nan
    m = classification_metrics(s, label) if task == "clf" else regression_metrics(s, label)
    return {"loss": loss, **m}


class Trainer:
    """One fold's training run in ``run_dir`` (``last.pt``, ``best.pt``, ``metrics.tsv``)."""

    def __init__(
        self,
        cfg: ChromoformerConfig,
        task: str,
        binsizes: tuple[int, ...],
        train_ds,
        val_ds,
        run_dir: Path,
        fold: int,
        device: torch.device,
        num_workers: int = 0,
        init_seed: int | None = None,
        last_path: Path | None = None,
        arch: str = "chromoformer",
    ) -> None:
        self.cfg, self.task, self.binsizes, self.fold = cfg, task, binsizes, fold
        self.train_ds, self.val_ds, self.run_dir, self.device = train_ds, val_ds, run_dir, device
        self.num_workers = num_workers
        self.last_path = last_path or run_dir / "last.pt"
        self.best_path = self.last_path.with_name("best.pt" if last_path is None else f"{self.last_path.stem}.best.pt")
        torch.manual_seed(cfg.seed if init_seed is None else init_seed)
        self.arch = arch
        self.model = build_model(task, cfg, binsizes, arch).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=cfg.gamma)
        self.epoch, self.best, self.best_epoch, self.history = 0, -math.inf, 0, []

    # ---- persistence -------------------------------------------------------------------
    def payload(self, val_out: np.ndarray, val_label: np.ndarray, val: dict[str, float]) -> dict:
        key = "last_val_auc" if self.task == "clf" else "last_val_r2"
        return {
            "net": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "epoch": self.epoch,
            "last_val_loss": torch.tensor(val["loss"]),
            key: 100.0 * val[main_metric(self.task)],
            "val_score": score(val_out, self.task).astype(np.float32),
            "val_label": val_label,
            "config": self.cfg.to_dict(),
            "binsizes": list(self.binsizes),
            "task": self.task,
            "arch": self.arch,
            "fold": self.fold,
            "best_score": self.best,
            "best_epoch": self.best_epoch,
            "chromoformer_version": __version__,
        }

    def resume(self, path: Path) -> None:
        ck = read_checkpoint(path, map_location=self.device)

        def same(c: dict | None) -> dict | None:  # num_epoch may grow: that extends the run
            return None if c is None else {**c, "num_epoch": 0}

        want = (same(self.cfg.to_dict()), list(self.binsizes), self.task, self.fold, self.arch)
        got = (same(ck.get("config")), ck.get("binsizes"), ck.get("task"), ck.get("fold"),
               ck.get("arch", "chromoformer"))
        if want != got:
            raise CheckpointError(f"{path}: cannot resume: config, bin sizes, task or fold differ from this run")
        self.model.load_state_dict(ck["net"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.epoch, self.best, self.best_epoch = ck["epoch"], ck["best_score"], ck["best_epoch"]
        mpath = self.run_dir / "metrics.tsv"
        if mpath.is_file():
            rows = pd.read_csv(mpath, sep="\t")
            self.history = rows[rows.epoch <= self.epoch].to_dict("records")
        log.info(
            "resumed from %s at epoch %d (best %s = %.4f at epoch %d)",
            path,
            self.epoch,
            main_metric(self.task),
            self.best,
            self.best_epoch,
        )

    # ---- loop ---------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        self.model.train()
        # The shuffle of epoch e depends on (seed, e) alone: resumed runs see the same order.
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + self.epoch)
        order = torch.randperm(len(self.train_ds), generator=g).tolist()
        loader = DataLoader(
            self.train_ds,
            batch_size=self.cfg.bsz,
            drop_last=len(order) > self.cfg.bsz,
            sampler=order,
            num_workers=self.num_workers,
        )
        outs, labels, total = [], [], 0.0
        bar = tqdm(loader, desc=f"epoch {self.epoch}/{self.cfg.num_epoch}", unit="batch", leave=False)
        for batch in bar:
            batch = to_device(batch, self.device)
            out = self.model(**batch)
            loss = loss_fn(out, batch["label"], self.task)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(out)
            outs.append(out.detach().float().cpu())
            labels.append(batch["label"].cpu())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        out, label = torch.cat(outs).numpy(), torch.cat(labels).numpy()
        m = evaluate(out, label, self.task)
        m["loss"] = total / max(len(out), 1)
        return m

    def fit(self) -> list[dict]:
        val_loader = DataLoader(self.val_ds, batch_size=self.cfg.bsz, num_workers=self.num_workers)
        while self.epoch < self.cfg.num_epoch:
            self.epoch += 1
            t0, lr = time.time(), self.opt.param_groups[0]["lr"]
            tr = self.train_epoch()
            val_out, val_label, val_ids = predict_batches(self.model, val_loader, self.device, "validate")
            va = evaluate(val_out, val_label, self.task)
            self.sched.step()
            key = main_metric(self.task)
            improved = va[key] > self.best or (self.best_epoch == 0)
            if improved:
                self.best, self.best_epoch = va[key], self.epoch
            row = {
                "epoch": self.epoch,
                "lr": lr,
                **{f"train_{k}": v for k, v in tr.items()},
                **{f"val_{k}": v for k, v in va.items()},
                "seconds": round(time.time() - t0, 2),
            }
            self.history.append(row)
            payload = self.payload(val_out, val_label, va)
            save_checkpoint(payload, self.last_path)
            if improved:
                save_checkpoint(payload, self.best_path)
                write_table(
                    pd.DataFrame({"gene_id": val_ids, "label": val_label, "score": payload["val_score"]}),
                    self.run_dir / "val_predictions.csv",
                )
            write_table(pd.DataFrame(self.history), self.run_dir / "metrics.tsv", sep="\t", float_format="%.6g")
            log.info(
                "epoch %d: train loss %.4f, val loss %.4f, val %s %.4f%s",
                self.epoch,
                tr["loss"],
                va["loss"],
                key,
                va[key],
                " (best)" if improved else "",
            )
        return self.history


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(
        prog="python -m chromoformer.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-c", "--config", default=None, help="config YAML (default: packaged default.yaml)")
    p.add_argument("-m", "--meta", required=True, help="metadata csv")
    p.add_argument("-d", "--npy-dir", required=True, help="npy directory (or binned store)")
    p.add_argument("--fold", type=int, required=True, help="0..4; validates on split (fold+3)%%4+1")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="run directory (default runs/{exp-id}-{clf|reg}-fold{fold}); a path ending in "
        ".pt is the original's checkpoint path: the run directory is its parent",
    )
    p.add_argument("--exp-id", default="chromoformer", help="experiment name (run directory, wandb group)")
    p.add_argument("--binsizes", type=int, nargs="+", default=list(DEFAULT_BINSIZES))
    p.add_argument("--regression", action="store_true", help="regress log2(RPKM+1) instead of classifying")
    p.add_argument("--model", default="chromoformer", choices=ARCHS,
                   help="architecture: Chromoformer, its no-pCRE ablation, or the DeepChrome/AttentiveChrome "
                        "baselines (single-resolution ablation: --binsizes 100)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last.pt")
    p.add_argument(
        "--store",
        default=None,
        help="binned store (default: built once in {output parent}/.stores/, reused by later runs)",
    )
    p.add_argument("--no-store", action="store_true", help="read npy files directly (slower)")
    p.add_argument("--eid", default=None, help="keep only metadata rows of this eid")
    p.add_argument("--epochs", type=int, default=None, help="override num_epoch of the config")
    p.add_argument(
        "--init-seed",
        type=int,
        default=None,
        help="seed for the initial weights (default: config seed; 42 reproduces the original's)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--num-workers", type=int, default=min(4, max(0, (os.cpu_count() or 1) - 1)))
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--use-wandb", action="store_true", help="also log to Weights & Biases")
    return p


def run(args: argparse.Namespace) -> list[dict]:
    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    task = "reg" if args.regression else "clf"
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.output or f"runs/{args.exp_id}-{task}-fold{args.fold}")
    run_dir = out.parent if out.suffix == ".pt" else out
    last = out if out.suffix == ".pt" else run_dir / "last.pt"
    if last.exists() and not args.resume:
        raise SystemExit(f"{last} exists: pass --resume to continue it, or choose another --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(run_dir / "train.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("chromoformer").addHandler(fh)

    genes = read_metadata(
        args.meta, cfg.i_max, cfg.w_max, require=("split", "expression" if args.regression else "label"), eid=args.eid
    )
    train_genes, val_genes = split_genes(genes, args.fold)
    if not train_genes or not val_genes:
        raise SystemExit(
            f"{args.meta}: fold {args.fold} leaves {len(train_genes)} training and "
            f"{len(val_genes)} validation genes; both must be non-empty"
        )
    store = None if args.no_store else (args.store or default_store_path(args.npy_dir, run_dir.parent))
    source = open_source(args.npy_dir, store, n_feats=cfg.n_feats, base=math.gcd(100, *args.binsizes))
    binsizes = tuple(args.binsizes)
    log.info(
        "fold %d: %d train / %d validation genes (split %d), source %s",
        args.fold,
        len(train_genes),
        len(val_genes),
        held_out_split(args.fold),
        type(source).__name__,
    )
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train_ds = ChromoformerDataset(train_genes, source, cfg, binsizes, task)
    val_ds = ChromoformerDataset(val_genes, source, cfg, binsizes, task)
    train_ds.validate()
    val_ds.validate()
    tr = Trainer(
        cfg,
        task,
        binsizes,
        train_ds,
        val_ds,
        run_dir,
        args.fold,
        device,
        args.num_workers,
        args.init_seed,
        last_path=out if out.suffix == ".pt" else None,
        arch=args.model,
    )
    if args.resume and last.exists():
        tr.resume(last)
    return tr.fit()


def main(argv: list[str] | None = None) -> None:
    """``python -m chromoformer.train ARGS`` is ``chromoformer train ARGS``."""
    from chromoformer.cli import main as cli_main

    cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
