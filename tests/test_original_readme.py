"""The original Chromoformer README's user journey, verbatim, on the real demo genes.

The configuration file and the training commands are the original README's, character
for character (its YAML writes ``lr: 3e-5``, which YAML 1.1 reads as a string). Folds are
then trained into one folder in the published checkpoints' layout and ensembled, and the
README's loading snippet is run in the form that works under torch >= 2.6.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

import pandas as pd
import pytest
import torch

ORIGINAL_CONFIG = """\
seed: 123
# biology
i_max: 8 # maximum number of interacting genomic regions to consider
w_prom: 40000 # window size around the core promoter
w_max: 40000 # maximum window size for regions (promoter and pCREs)
# optimization
num_epoch: 10
lr: 3e-5
bsz: 64
gamma: 0.87
# model
n_feats: 7
embed: # Embedding transformer
  n_layers: 1
  n_heads: 2
  d_model: 128
  d_ff: 128
pairwise_interaction: # Pairwise Interaction transformer
  n_layers: 2
  n_heads: 2
  d_model: 128
  d_ff: 256
regulation: # Regulation transformer
  n_layers: 6
  n_heads: 8
  d_model: 256
  d_ff: 256
d_head: 128 # inner dimension of the last fully-connected layer
"""
CLF = """python -m chromoformer.train --config config.yaml --meta metadata.csv --npy-dir npy_dir \\
    --fold 0 --binsizes 2000 500 100"""
REG = """python -m chromoformer.train --config config.yaml --meta metadata.csv --npy-dir npy_dir \\
    --fold 0 --binsizes 2000 500 100 --regression"""


def sh(cmd: str, cwd) -> subprocess.CompletedProcess:
    argv = shlex.split(cmd.replace("\\\n", " "))
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_original_config_loads_verbatim(tmp_path):
    from chromoformer.config import load_config

    p = tmp_path / "config.yaml"
    p.write_text(ORIGINAL_CONFIG)
    c = load_config(p)
    assert c.lr == 3e-5 and c.to_dict() == load_config().to_dict()


@pytest.mark.slow
def test_original_readme_journey(demo, tmp_path):
    (tmp_path / "config.yaml").write_text(ORIGINAL_CONFIG)
    meta = pd.read_csv(demo / "demo_meta.csv")
    meta["split"] = [i % 4 + 1 for i in range(len(meta))]  # the demo genes are all split 1
    meta.to_csv(tmp_path / "metadata.csv", index=False)
    (tmp_path / "npy_dir").symlink_to(demo / "demo_data")

    sh(CLF, tmp_path)
    sh(REG, tmp_path)
    clf, reg = tmp_path / "runs" / "chromoformer-clf-fold0", tmp_path / "runs" / "chromoformer-reg-fold0"
    assert torch.load(clf / "last.pt", weights_only=False)["epoch"] == 10
    assert "last_val_r2" in torch.load(reg / "last.pt", weights_only=False)

    # the published layout: one folder, one checkpoint per fold, named as on figshare
    ckpts = []
    for fold in (1, 2, 3, 4):
        out = f"E003/chromoformer-reproduction-E003-conf1-fold{fold}.pt"
        sh(f"{CLF.replace('--fold 0', f'--fold {fold}')} -o {out}", tmp_path)
        ckpts.append(tmp_path / out)
    names = {p.name for p in (tmp_path / "E003").iterdir() if not p.name.startswith(".")}
    assert {f"chromoformer-reproduction-E003-conf1-fold{f}.metrics.tsv" for f in (1, 2, 3, 4)} <= names
    sh(f"chromoformer predict -m metadata.csv -d npy_dir {' '.join(f'-k {c}' for c in ckpts)} -o pred.csv", tmp_path)
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 100 and pred.prediction.between(0, 1).all()

    # the README's snippet, as it works under torch >= 2.6 (see README, "Published models")
    from chromoformer.engine.checkpoint import read_checkpoint

    ckpt = read_checkpoint(ckpts[0], map_location="cpu")
    pretrained_model_weights = ckpt["net"]
    from chromoformer import ChromoformerClassifier

    ChromoformerClassifier().load_state_dict(pretrained_model_weights)
