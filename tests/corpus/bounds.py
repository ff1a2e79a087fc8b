"""Bad-input cases: sizes, counts and seeds past their bounds (config.LIMITS) in every place a user can pass
them (a config, a checkpoint's stored config, a flag, a file header, a csv field), and changes that must not pass
unseen (a config or fold that disagrees with the checkpoint, windows wider than the signal, changed inputs on
resume). Each is one clear line before anything of that size is allocated."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import yaml

from corpus.builders import cli_case, config_case, expect, predict, set_key, sheet_case, train
from fault_inputs import Case, npy_with


def _interpret(inp, *extra: str) -> Case:
    out = inp.out("interp")
    return Case(["interpret", "-m", str(inp.meta), "-d", str(inp.npy), "-k", str(inp.ckpt), "-o", str(out),
                 *extra], (), (out,))


def _stored_config(key: str, value) -> Callable:
    """A checkpoint whose stored config (and spec) say ``key: value``."""
    def f(inp) -> Case:
        ck = torch.load(inp.ckpt, weights_only=False)
        for where in (ck["config"], ck["spec"]["config"]):
            set_key(key, value)(where)
        p = inp.out("model.pt")
        torch.save(ck, p)
        return expect(predict(inp, ckpt=p), p, key.split(".")[-1])
    return f


BIG = {"n_layers": 48, "n_heads": 128, "d_model": 4096, "d_ff": 16384}  # each within LIMITS, the model not


def _too_big_for_memory(d: dict) -> None:
    d.update(embed=dict(BIG), pairwise_interaction=dict(BIG), regulation=dict(BIG), d_head=4096)


def _stored_too_big(inp) -> Case:
    """A checkpoint whose stored config describes ~90 billion parameters (every size within its bound)."""
    ck = torch.load(inp.ckpt, weights_only=False)
    for where in (ck["config"], ck["spec"]["config"]):
        _too_big_for_memory(where)
    p = inp.out("model.pt")
    torch.save(ck, p)
    return expect(predict(inp, ckpt=p), p, "parameters) needs about", "GiB are available")


def _npy_header_bomb(inp) -> Case:
    """An npy file whose header declares 7 x 4e11 float32 values (10 TiB) over a few bytes of data."""
    d, victim = npy_with(inp, "npy", np.zeros((1, 1), np.float32))
    with open(victim, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (7, 4 * 10**11)})
        f.write(b"\0" * 64)
    return expect(predict(inp, npy=d), victim.name, "expected a numeric array", "400000000000")


def _huge_field(inp) -> Case:
    """A metadata row whose neighbours field holds 100,000 pCREs (a 1.5 MB field)."""
    m = pd.read_csv(inp.meta, dtype=str, keep_default_na=False)
    m.loc[0, "neighbors"] = ";".join(["chr1:1000-2000"] * 100_000)
    m.loc[0, "scores"] = ";".join(["1.0"] * 100_000)
    p = inp.out("meta.csv")
    m.to_csv(p, index=False)
    return expect(predict(inp, meta=p), p, ":2:", "field larger than field limit")


def _config_disagrees(inp) -> Case:
    c = inp.out("config.yaml")
    d = yaml.safe_load(inp.config.read_text())
    d["i_max"] = 4
    c.write_text(yaml.safe_dump(d))
    return expect(predict(inp, None, None, None, "-c", str(c)), "--config disagrees", "i_max: checkpoint 8")


def _verify_other_fold(inp) -> Case:
    return Case(["verify", str(inp.ckpt), "-m", str(inp.meta), "-d", str(inp.npy), "--fold", "3"],
                (str(inp.ckpt), "trained on fold 1"))


def _wide_promoter(inp) -> Case:
    """w_prom of 400 kb over signal regions of TSS +- 20 kb: refused (naming the gene), not silently cropped."""
    case = config_case(lambda d: d.update(w_prom=400_000, w_max=400_000))(inp)
    return expect(case, inp.meta, "w_prom 400000", "TSS +- 20000")


def _resume_changed_labels(inp) -> Case:
    """A run resumed on metadata whose labels changed since it started."""
    run = inp.out("run")
    base = train(inp)
    shutil.copytree(inp.ckpt.parent, run)
    m = pd.read_csv(inp.meta, dtype=str, keep_default_na=False)
    m["label"] = m["label"].map({"0": "1", "1": "0"})
    p = inp.out("meta.csv")
    m.to_csv(p, index=False)
    argv = [str(a) for a in base.argv]
    argv[argv.index(str(inp.meta))] = str(p)
    argv[argv.index("--epochs") + 1] = "2"
    return Case([*argv, "--resume"], ("cannot resume", "the genes (metadata", "changed since the run started"))


CASES = {
    # ---- sizes past their bound, in each place a user can pass one
    "config d_model 100000": config_case(set_key("embed.d_model", 100_000), "d_model must be 1..4,096"),
    "config i_max 100000": config_case(set_key("i_max", 100_000), "i_max must be 1..128"),
    "config seed 2**64": config_case(set_key("seed", 2**64), "seed must be 0..4,294,967,295"),
    "config num_epoch 10**9": config_case(set_key("num_epoch", 10**9), "num_epoch must be 1..100,000"),
    "config bsz 10**8": config_case(set_key("bsz", 10**8), "bsz must be 1..65,536"),
    "checkpoint stored d_model 100000": _stored_config("embed.d_model", 100_000),
    "config within bounds, model past memory": lambda i: expect(config_case(_too_big_for_memory)(i),
                                                                "parameters) needs about", "GiB for training"),
    "checkpoint stored model past memory": _stored_too_big,
    "checkpoint stored i_max 100000": _stored_config("i_max", 100_000),
    "train --threads 100000": cli_case("train", "--threads", "100000", why="--threads must be >= 1 (at most"),
    "train --init-seed 2**64": cli_case("train", "--init-seed", str(2**64), why="init_seed must be an integer 0.."),
    "train --epochs 10**9": cli_case("train", "--epochs", str(10**9), why="--epochs must be >= 1 (at most 100,000)"),
    "predict --batch-size 10**9": cli_case("predict", "--batch-size", str(10**9), why="--batch-size must be >= 1"),
    "interpret --ig-steps 10**9": lambda i: expect(_interpret(i, "--ig-steps", str(10**9)),
                                                   "--ig-steps must be 0..1000"),
    "interpret 600 genes": lambda i: expect(_interpret(i, "--genes", *[f"g{k}" for k in range(600)]),
                                            "at most 512"),
    "npy header declares 10 TiB": _npy_header_bomb,
    "metadata field of 100k pCREs": _huge_field,
    "sheet train.epochs 0": sheet_case(lambda s: s.update(train={"epochs": 0}), "train.epochs must be 1..100000"),
    "sheet train.precision fp8": sheet_case(lambda s: s.update(train={"precision": "fp8"}), "train.precision"),
    # ---- changes that must not pass unseen
    "predict -c disagrees with the checkpoint": _config_disagrees,
    "verify --fold other than the checkpoint's": _verify_other_fold,
    "w_prom wider than the signal regions": _wide_promoter,
    "resume with changed labels": _resume_changed_labels,
}
