"""Bad-input cases: hostile names and values (issue #20). Classes, one or more members each:

names that would leave their folder or break a format; outputs aimed inside inputs; values that pass
a type check but are not sane (temperature, integer weights, float32 overflow); YAML that repeats a
key or expands without limit; checkpoint fields of the wrong type; torchrun variables; files that
are not regular files, loop, or expand without limit (gzip bombs); interpret.json edited by hand.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from corpus.builders import _interpretation, expect, interp_case, predict, sheet_case, train
from fault_inputs import Case, Inputs, copy, first_promoter_array, npy_with


def _ckpt_field(**changes) -> callable:
    """``inspect`` of the fixture's checkpoint with stored fields replaced."""
    def f(inp: Inputs, command: str = "inspect") -> Case:
        ck = torch.load(inp.ckpt, weights_only=False)
        ck.update(changes)
        p = inp.out("edited.pt")
        torch.save(ck, p)
        return Case([command, str(p)] if command == "inspect" else [command, "-k", str(p)], (str(p),))
    return f


def _verify(make):
    return lambda i: make(i, "verify")


def _int_weights(inp: Inputs, fmt: str) -> Case:
    ck = torch.load(inp.ckpt, weights_only=False)
    k = next(k for k, v in ck["net"].items() if v.is_floating_point())
    ck["net"][k] = ck["net"][k].round().to(torch.int32)
    p = inp.out("int.pt")
    torch.save(ck, p)
    if fmt == "safetensors":  # the same weights exported by another tool, keeping the int tensor
        from safetensors.torch import save_file

        s = inp.out("int.safetensors")
        meta = {k: json.dumps(ck[k]) for k in ("task", "binsizes", "config", "marks", "arch") if k in ck}
        save_file({k: v.contiguous() for k, v in ck["net"].items()}, str(s), metadata=meta)
        p = s
    return expect(predict(inp, ckpt=p), p, "is stored as int", "not a floating-point type")


def _overflow_npy(inp: Inputs) -> Case:
    x = first_promoter_array(inp).astype(np.float32)
    x[:] = 3e38
    d, victim = npy_with(inp, "npy", x)
    out = inp.out("store")
    return Case(["build-store", "-d", str(d), "-o", str(out)], (victim.name, "past float32"), (out,))


def _config_text(text: str, *why: str):
    def f(inp: Inputs) -> Case:
        c = inp.out("config.yaml")
        c.write_text(text)
        return expect(train(inp, config=c), c, *why)
    return f


def _dup_lr(inp: Inputs) -> str:
    return inp.config.read_text() + "lr: 100\n"


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def _free_port() -> str:
    """A port nothing listens on now (a fixed one may be taken on a shared machine)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _env(case: Case, **env: str) -> Case:
    case.env = env
    return case


def _inside(inp: Inputs, command: str) -> Case:
    """An output aimed inside an input folder (the npy folder, the store)."""
    region = next(iter(sorted(inp.npy.glob("*.npy"))))
    if command == "predict-npy":
        c = predict(inp)
        argv = [*c.argv[:-1], str(inp.npy / region.name)]
        return _keep(Case(argv, ("inside the input folder",)), inp.npy)
    if command == "predict-store":
        s = copy(inp.store, inp.out("store"))
        c = predict(inp, npy=s)
        return _keep(Case([*c.argv[:-1], str(s / "regions.tsv")], ("inside the input folder",)), s)
    if command == "compare":
        return _keep(Case(["compare", "-m", str(inp.meta), "-d", str(inp.npy), "-o", str(inp.npy), "--epochs", "1"],
                          ("would overwrite the input",)), inp.npy)
    if command == "interpret":
        out = inp.npy / "interp"
        return Case(["interpret", "-m", str(inp.meta), "-d", str(inp.npy), "-k", str(inp.ckpt), "-o", str(out)],
                    ("inside the input folder",), (out,))
    if command == "build-store":
        out = inp.npy / "store"
        return Case(["build-store", "-d", str(inp.npy), "-o", str(out)], ("inside the input folder",), (out,))
    if command == "train":
        out = inp.npy / "run"
        return Case([*train(inp).argv[: train(inp).argv.index("-o") + 1], str(out), "--epochs", "1",
                     "--num-workers", "0"], ("inside the input folder",), (out,))
    raise AssertionError(command)


def _keep(case: Case, folder: Path) -> Case:
    case.keep = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return case


def _meta_file(inp: Inputs, kind: str) -> Case:
    if kind == "stdin":
        return expect(predict(inp, meta="/dev/stdin"), "/dev/stdin", "not a regular file")
    p = inp.out("loop.csv")
    os.symlink(p, p)  # a link to itself
    return expect(predict(inp, meta=p), p, "symbolic link loop")


def _gzip_bomb(inp: Inputs) -> Case:
    """An expression table that expands 1000-fold past 64 MB (made in chunks: 80 KB on disk)."""
    p = inp.out("expression.tsv.gz")
    with gzip.open(p, "wb", compresslevel=9) as f:
        f.write(b"gene_id\tS1\n")
        chunk = b"0" * 2**24
        for _ in range(5):  # 80 MB of zeros
            f.write(chunk)
    out = inp.out("meta.csv")
    argv = ["preprocess", "metadata", "--genes", str(inp.genes), "--expression", str(p), "--eid", "S1",
            "--interactions", str(inp.interactions), "--out", str(out)]
    return Case(argv, (str(p), "gzip bomb"), (out,))


def _meta_gene_id(value: str):
    def f(inp: Inputs) -> Case:
        d = pd.read_csv(inp.meta, dtype=str, keep_default_na=False)
        d.loc[0, "gene_id"] = value
        m = inp.out("meta.csv")
        d.to_csv(m, index=False)
        return expect(predict(inp, meta=m), f"{m}:2", "control character")
    return f


def _signal_mark(inp: Inputs) -> Case:
    out = inp.out("sigstore")
    return Case(["preprocess", "signals", "--meta", str(inp.meta), "--signal", f"a/b={inp.reads}", "--out",
                 str(out)], ("mark name", "'a/b'", "not a valid name"), (out,))


def _big_chrom(inp: Inputs) -> Case:
    d = _interpretation(inp)
    sizes, out = inp.out("sizes.txt"), inp.out("tracks")
    sizes.write_text("".join(f"chr{c}\t{5_000_000_000 if c == 1 else 300_000_000}\n"
                             for c in [*range(1, 23), "X", "Y"]))
    return Case(["export", "-m", str(inp.meta), "-o", str(out), "--interpretation", str(d), "--chrom-sizes",
                 str(sizes)], ("chromosome chr1 size 5000000000", "32-bit"), (out,))


def _record(**changes):
    def broken(d: Path) -> None:
        info = json.loads((d / "interpret.json").read_text())
        info.update(changes)
        (d / "interpret.json").write_text(json.dumps(info))
    return broken


def _unverifiable_meta(inp: Inputs) -> Case:
    m = inp.out("nolabel.csv")
    pd.read_csv(inp.meta).drop(columns="label").to_csv(m, index=False)
    return Case(["verify", "-k", str(inp.ckpt), "-m", str(m), "-d", str(inp.npy)], (str(m), "label"))


CASES = {
    # ---- names -> file names and formats
    "gene_id with a TAB": _meta_gene_id("a\tb"),
    "gene_id with a newline": _meta_gene_id("a\nb"),
    "gene_id with NUL": _meta_gene_id("a\x00b"),
    "signal mark name with /": _signal_mark,
    "sheet sample ../x": sheet_case(lambda s: s["samples"].update({"../x": s["samples"].pop("S1")}),
                                    "sample name '../x' is not a valid name"),
    "sheet sample $(touch PWNED)": sheet_case(lambda s: s["samples"].update({"$(touch PWNED)": s["samples"].pop("S1")}),
                                          "is not a valid name"),
    "sheet mark with ;": sheet_case(lambda s: (s.update(marks=["K4;touch PWNED"]),
                                               s["samples"]["S1"].update(signals={"K4;touch PWNED": s["samples"]["S1"]
                                                                                  ["signals"]["H3K4me3"]})),
                                    "mark name 'K4;touch PWNED' is not a valid name"),
    "sheet biotype newline": sheet_case(lambda s: s.update(biotype="protein_coding\ntouch PWNED"), "control character"),
    "sheet extra unbalanced": sheet_case(lambda s: s.update(train={"extra": "--seed '1"}), "train.extra"),
    "sheet extra not options": sheet_case(lambda s: s.update(train={"extra": "; touch PWNED"}),
                                          "must be train options starting with --"),
    "sheet folds 7": sheet_case(lambda s: s.update(train={"folds": [1, 7]}), "train.folds"),
    "sheet duplicate sample": sheet_case(lambda s: yaml.safe_dump(s) + "  S1: {}\n", "duplicate key 'S1'"),
    "sheet billion laughs": sheet_case(lambda s: LAUGHS, "aliases expand"),
    # ---- outputs inside inputs
    "predict -o inside npy": lambda i: _inside(i, "predict-npy"),
    "predict -o inside store": lambda i: _inside(i, "predict-store"),
    "compare -o is -d": lambda i: _inside(i, "compare"),
    "interpret -o inside npy": lambda i: _inside(i, "interpret"),
    "build-store -o inside npy": lambda i: _inside(i, "build-store"),
    "train -o inside npy": lambda i: _inside(i, "train"),
    # ---- values that pass a type check
    "predict --temperature 1e-310": lambda i: expect(predict(i, None, None, None, "--temperature", "1e-310"),
                                                     "--temperature", "[0.01, 100]"),
    "predict --temperature 1e6": lambda i: expect(predict(i, None, None, None, "--temperature", "1e6"),
                                                  "[0.01, 100]"),
    "ckpt integer weights": lambda i: _int_weights(i, "pt"),
    "ckpt integer weights safetensors": lambda i: _int_weights(i, "safetensors"),
    "npy float32 overflow": _overflow_npy,
    # ---- YAML
    "config duplicate lr": lambda i: _config_text(_dup_lr(i), "duplicate key 'lr'")(i),
    "config billion laughs": _config_text(LAUGHS, "aliases expand"),
    "config nested too deep": _config_text("a: " + "[" * 20000 + "]" * 20000 + "\n", "invalid YAML"),
    # ---- checkpoint fields (inspect, verify)
    "ckpt inspect auc text": _ckpt_field(last_val_auc="high"),
    "ckpt inspect fold abc": _ckpt_field(fold="abc"),
    "ckpt inspect epoch -1": _ckpt_field(epoch=-1),
    "ckpt inspect val_score text": _ckpt_field(val_score="0.5,0.7"),
    "ckpt inspect labels 0 2": _ckpt_field(val_label=np.array([0, 2])),
    "ckpt verify auc text": _verify(_ckpt_field(last_val_auc="high")),
    "ckpt verify loss text": _verify(_ckpt_field(last_val_loss="low")),
    "ckpt verify val_score dict": _verify(_ckpt_field(val_score={"a": 1})),
    "ckpt verify labels 0 2": _verify(_ckpt_field(val_label=np.array([0, 2]))),
    "ckpt verify fold 9": _verify(_ckpt_field(fold=9)),
    "ckpt verify val_gene_ids int": _verify(_ckpt_field(val_gene_ids=7)),
    "verify -m without labels": _unverifiable_meta,
    # ---- torchrun variables
    "env WORLD_SIZE abc": lambda i: _env(expect(train(i), "WORLD_SIZE='abc'"), WORLD_SIZE="abc"),
    "env RANK >= WORLD_SIZE": lambda i: _env(expect(train(i), "RANK=2 and WORLD_SIZE=2"), RANK="2", WORLD_SIZE="2"),
    "env LOCAL_RANK -1": lambda i: _env(expect(train(i), "LOCAL_RANK=-1"), LOCAL_RANK="-1"),
    "env no MASTER_ADDR": lambda i: _env(expect(train(i), "MASTER_ADDR"), WORLD_SIZE="2", RANK="0"),
    "env rank 1 missing": lambda i: _env(expect(train(i), "rank(s) 1 did not join within 2 s"), WORLD_SIZE="2",
                                         RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port(),
                                         CHROMOFORMER_RENDEZVOUS_TIMEOUT="2"),
    "env rank 0 missing": lambda i: _env(expect(train(i), "rank 1 of 2: could not reach"), WORLD_SIZE="2",
                                         RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port(),
                                         CHROMOFORMER_RENDEZVOUS_TIMEOUT="2"),
    "env timeout text": lambda i: _env(expect(train(i), "CHROMOFORMER_RENDEZVOUS_TIMEOUT"), WORLD_SIZE="2",
                                       RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port(),
                                       CHROMOFORMER_RENDEZVOUS_TIMEOUT="soon"),
    # ---- files
    "meta /dev/stdin": lambda i: _meta_file(i, "stdin"),
    "meta symlink loop": lambda i: _meta_file(i, "loop"),
    "gzip bomb expression table": _gzip_bomb,
    "export chrom size past 32 bit": _big_chrom,
    # ---- interpret.json
    "interp score not text": interp_case("report", _record(score=3), "'score' must be text"),
    "interp method not text": interp_case("report", _record(method=["x"]), "'method' must be text"),
    "interp w_prom edited": interp_case("export", _record(w_prom=20000), "do not cover the record's w_prom"),
    "interp mark with /": interp_case("export", _record(marks=["a/b"] * 7), "not a valid name"),
    "interp gene listed twice": interp_case("report", lambda d: _record(
        genes=2 * json.loads((d / "interpret.json").read_text())["genes"][:1])(d), "listed twice"),
}

CASES.update({
    # ---- options that passed their type check (found by probing every command)
    "interpret --genes twice": lambda i: Case(["interpret", "-m", str(i.meta), "-d", str(i.npy), "-k", str(i.ckpt),
                                               "-o", str(i.out("interp")), "--genes", *[_first_gene(i)] * 2],
                                              ("given twice",), (i.out("interp"),)),
    "export --width 0": lambda i: Case(["export", "-m", str(i.meta), "-o", str(i.out("tracks")), "--width", "0"],
                                       ("--width must be >= 1",), (i.out("tracks"),)),
    "demo --genes 0": lambda i: Case(["demo", "-o", str(i.out("demo")), "--genes", "0", "--quick"],
                                     ("--genes must be >= 8",), (i.out("demo"),)),
})


def _first_gene(inp: Inputs) -> str:
    return pd.read_csv(inp.meta, dtype=str).gene_id[0]
