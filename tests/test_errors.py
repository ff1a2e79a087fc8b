"""Malformed inputs give one line naming the file (and gene) and exit code 2."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from chromoformer.cli import main
from chromoformer.data.synthetic import write_synthetic_dataset

HEADER = "gene_id,label,chrom,start,end,strand,split,neighbors,scores\n"


def cli_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    assert e.value.code == 2
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()  # progress bars share stderr
    errors = [ln for ln in lines if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("chromoformer: error: "), lines
    return errors[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    meta, npy = write_synthetic_dataset(tmp_path_factory.mktemp("err"), n_genes=4, seed=3)
    torch.manual_seed(0)
    from chromoformer import ChromoformerClassifier
    from chromoformer.engine.checkpoint import save_checkpoint

    ckpt = meta.parent / "model.pt"
    save_checkpoint({"net": ChromoformerClassifier().state_dict()}, ckpt)
    return meta, npy, ckpt


def _predict(capsys, meta, npy, ckpt, tmp_path):
    return cli_error(capsys, "predict", "-m", meta, "-d", npy, "-k", ckpt, "-o", tmp_path / "p.csv")


def _meta_with(tmp_path, body: str, header: str = HEADER):
    p = tmp_path / "bad.csv"
    p.write_text(header + body)
    return p


def test_missing_column(capsys, data, tmp_path):
    meta = _meta_with(tmp_path, "G1,1,chr1,50000,50001,1,,\n", "gene_id,label,chrom,start,end,split,neighbors,scores\n")
    err = _predict(capsys, meta, data[1], data[2], tmp_path)
    assert str(meta) in err and "strand" in err


def test_neighbors_scores_mismatch(capsys, data, tmp_path):
    meta = _meta_with(tmp_path, "G1,1,chr1,50000,50001,+,1,chr1:1000-2000;chr1:3000-4000,2.0\n")
    err = _predict(capsys, meta, data[1], data[2], tmp_path)
    assert f"{meta}:2" in err and "G1" in err and "2 neighbors but 1 scores" in err


def test_too_many_neighbors(capsys, data, tmp_path):
    nb = ";".join(f"chr1:{i * 10000}-{i * 10000 + 500}" for i in range(1, 10))
    meta = _meta_with(tmp_path, f"G7,1,chr1,50000,50001,+,1,{nb},{';'.join(['2'] * 9)}\n")
    err = _predict(capsys, meta, data[1], data[2], tmp_path)
    assert "G7" in err and "exceed i_max=8" in err


def test_pcre_longer_than_w_max(capsys, data, tmp_path):
    meta = _meta_with(tmp_path, "G2,1,chr1,50000,50001,+,1,chr1:100000-140001,2.0\n")
    err = _predict(capsys, meta, data[1], data[2], tmp_path)
    assert "G2" in err and "40001 bp, longer than w_max=40000" in err


def test_duplicate_gene_and_bad_strand(capsys, data, tmp_path):
    meta = _meta_with(tmp_path, "G1,1,chr1,50000,50001,+,1,,\nG1,0,chr1,90000,90001,+,1,,\n")
    assert "duplicate gene_id" in _predict(capsys, meta, data[1], data[2], tmp_path)
    meta = _meta_with(tmp_path, "G1,1,chr1,50000,50001,*,1,,\n")
    assert "strand must be" in _predict(capsys, meta, data[1], data[2], tmp_path)


def test_missing_npy_file(capsys, data, tmp_path):
    meta, npy, ckpt = data
    npy2 = tmp_path / "npy"
    shutil.copytree(npy, npy2)
    victim = sorted(npy2.glob("*.npy"))[0]
    victim.unlink()
    err = _predict(capsys, meta, npy2, ckpt, tmp_path)
    assert str(victim) in err and "missing npy file for gene SYN" in err


def test_wrong_array_shape(capsys, data, tmp_path):
    meta, npy, ckpt = data
    npy2 = tmp_path / "npy"
    shutil.copytree(npy, npy2)
    victim = sorted(npy2.glob("*.npy"))[0]
    np.save(victim, np.zeros((6, 10), np.float16))
    err = _predict(capsys, meta, npy2, ckpt, tmp_path)
    assert str(victim) in err and "expected a numeric array of shape (7," in err and "gene SYN" in err


def test_unknown_config_key(capsys, data, tmp_path):
    cfg = tmp_path / "c.yaml"
    from chromoformer.config import load_config

    d = load_config().to_dict()
    d["embed"]["dropout"] = 0.1
    import yaml

    cfg.write_text(yaml.safe_dump(d))
    meta, npy, _ = data
    err = cli_error(capsys, "train", "-c", cfg, "-m", meta, "-d", npy, "--fold", 1, "-o", tmp_path / "run")
    assert str(cfg) in err and "unknown config key(s) embed.dropout" in err


def test_checkpoint_with_pickled_object_is_refused(capsys, data, tmp_path):
    class Payload:
        def __reduce__(self):
            return (shutil.rmtree, ("/nonexistent-chromoformer-test",))

    evil = tmp_path / "evil.pt"
    torch.save({"net": {}, "extra": Payload()}, evil)
    err = _predict(capsys, data[0], data[1], evil, tmp_path)
    assert str(evil) in err and "refused to load" in err and "rmtree" in err


def test_store_built_from_incomplete_npy_dir_names_gene(capsys, data, tmp_path):
    meta, npy, _ = data
    npy2 = tmp_path / "npy"
    shutil.copytree(npy, npy2)
    victim = sorted(npy2.glob("*.npy"))[-1]
    victim.unlink()
    err = cli_error(capsys, "train", "-m", meta, "-d", npy2, "--fold", 1, "-o", tmp_path / "run", "--epochs", 1)
    assert victim.stem in err and "gene SYN" in err
