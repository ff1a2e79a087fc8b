"""Building blocks of the bad-input corpus (tests/test_fault_corpus.py).

A *case* takes a :class:`Inputs` of valid files, breaks one input in one way, and returns
the command line to run, strings the single error line must contain, and output paths
that must not exist afterwards.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.store import file_sha256, manifest_sha256

# A small model config for the fault suites: the same code paths as the default, faster.
TINY = {"embed": {"n_layers": 1, "n_heads": 2, "d_model": 16, "d_ff": 16},
        "pairwise_interaction": {"n_layers": 1, "n_heads": 2, "d_model": 16, "d_ff": 16},
        "regulation": {"n_layers": 1, "n_heads": 2, "d_model": 16, "d_ff": 16}, "d_head": 8, "bsz": 4}


def tiny_config(num_epoch: int = 1):
    """The packaged default config with :data:`TINY` merged in: the one small model config of the tests."""
    from chromoformer.config import ChromoformerConfig, load_config

    return ChromoformerConfig.from_dict({**load_config().to_dict(), **TINY, "num_epoch": num_epoch})


def tiny_data(root: Path, n_genes: int, seed: int, config: dict = TINY) -> tuple[Path, Path, Path]:
    """A synthetic dataset and a config YAML (the default with ``config`` merged in) under ``root``."""
    import yaml

    from chromoformer.config import load_config
    from chromoformer.data.synthetic import write_synthetic_dataset

    meta, npy = write_synthetic_dataset(root / "data", n_genes=n_genes, seed=seed)
    cfg = root / "config.yaml"
    cfg.write_text(yaml.safe_dump(load_config().to_dict() | config))
    return meta, npy, cfg


@dataclass
class Inputs:
    """Valid inputs of every kind; cases copy what they break into ``tmp``."""

    meta: Path  # metadata csv (4 splits)
    npy: Path  # npy directory
    store: Path  # binned store of ``npy``
    ckpt: Path  # checkpoint trained by chromoformer train (has marks, binsizes, config)
    config: Path  # valid config YAML
    preds: Path  # a val_predictions.csv
    gtf: Path
    expression: Path
    interactions: Path
    genes: Path  # genes.tsv from `preprocess genes`
    reads: Path  # BED reads
    sizes: Path  # chrom sizes
    tmp: Path

    def out(self, name: str) -> Path:
        return self.tmp / name


@dataclass
class Case:
    argv: list[str]
    expect: tuple[str, ...]  # substrings of the error line (the file and the problem)
    absent: tuple[Path, ...] = ()  # outputs that must not exist after the failure
    keep: dict[Path, bytes] = field(default_factory=dict)  # inputs that must be unchanged after it
    env: dict[str, str] = field(default_factory=dict)  # environment variables the command runs with


def copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy(src, dst)
    return dst


def edit_csv(src: Path, dst: Path, row: int | None, col: str, value: str, sep: str = ",") -> Path:
    """Copy a table with one cell (``row``; None = every row) set to ``value``."""
    d = pd.read_csv(src, dtype=str, keep_default_na=False, sep=sep)
    if row is None:
        d[col] = value
    else:
        d.loc[row, col] = value
    d.to_csv(dst, index=False, sep=sep)
    return dst


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def reseal(store: Path) -> Path:
    """Recompute a store's checksums after an edit: only deeper checks can catch the edit then."""
    mf = store / "manifest.json"
    m = json.loads(mf.read_text())
    m["sha256"] = {n: file_sha256(store / n) for n in ("sums.npy", "regions.tsv")}
    m["sha256"]["manifest.json"] = manifest_sha256(m)
    mf.write_text(json.dumps(m))
    return store


def edit_manifest(store: Path, **fields) -> Path:
    mf = store / "manifest.json"
    m = json.loads(mf.read_text())
    m.update(fields)
    mf.write_text(json.dumps(m))
    return store


def edit_regions(store: Path, row: int, **fields) -> Path:
    p = store / "regions.tsv"
    d = pd.read_csv(p, sep="\t", dtype={"name": str})
    for k, v in fields.items():
        d.loc[row, k] = v
    d.to_csv(p, sep="\t", index=False)
    return store


def edit_sums(store: Path, value: float) -> Path:
    p = store / "sums.npy"
    x = np.load(p)
    x[3, 2] = value
    np.save(p, x)
    return store


def npy_with(inp: Inputs, name: str, array: np.ndarray | bytes | None) -> tuple[Path, Path]:
    """An npy directory (symlinks to ``inp.npy``) whose first promoter file is replaced."""
    d = inp.out(name)
    d.mkdir()
    files = sorted(inp.npy.glob("*.npy"))
    for f in files:
        (d / f.name).symlink_to(f.resolve())
    victim = d / _first_promoter(inp)
    victim.unlink()
    if isinstance(array, bytes):
        victim.write_bytes(array)
    elif array is not None:
        np.save(victim, array, allow_pickle=True)
    return d, victim


def _first_promoter(inp: Inputs) -> str:
    row = pd.read_csv(inp.meta).iloc[0]
    return f"{row.chrom}:{row.start - 20000}-{row.start + 20000}.npy"


def first_promoter_array(inp: Inputs) -> np.ndarray:
    return np.load(inp.npy / _first_promoter(inp)).astype(np.float32)
