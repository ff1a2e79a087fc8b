"""The snakemake workflow end to end on a tiny simulated dataset (--cores 2)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from chromoformer.preprocess.simulate import CHROMHMM, SimConfig, simulate

MARKS = ["H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac"]


def _run_simulated(tmp_path, signals: list[str], marks: list[str] | None = None, folds: list[int] | None = None):
    """Simulate a 16-Mb dataset, write a sheet with these signals (and 'marks', 'folds' when given) and run the
    workflow on 2 cores, 1 epoch; returns (sheet path, work dir, completed process)."""
    p = simulate(tmp_path / "sim", SimConfig(span_mb=16))
    sheet = {
        "annotation": str(p["gtf"]), "chrom_sizes": str(p["sizes"]), "expression": str(p["expression"]),
        "assembly": "simGenome1", **({"marks": marks} if marks else {}),
        "samples": {"SIM": {"interactions": str(p["pchic"]), "expression_column": "SIM",
                            "signals": {m: str(p[f"bam_{m}"]) for m in signals}}},
        "train": {"epochs": 1, "extra": "--num-workers 0", **({"folds": folds} if folds else {})},
    }
    cfg, wd = tmp_path / "samples.yaml", tmp_path / "wf"
    r = _workflow(sheet, cfg, wd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return cfg, wd, r


def _workflow(sheet: dict, cfg: Path, wd: Path) -> subprocess.CompletedProcess:
    """Write ``sheet`` to ``cfg`` and run the workflow on it in ``wd`` (2 cores, quiet)."""
    cfg.write_text(yaml.safe_dump(sheet))
    return subprocess.run(["chromoformer", "workflow", "--config", str(cfg), "--directory", str(wd), "--cores", "2",
                           "--", "--quiet"], capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_workflow_end_to_end(tmp_path):
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    cfg, wd, r = _run_simulated(tmp_path, MARKS)
    m = pd.read_csv(wd / "SIM" / "evaluation" / "metrics.tsv", sep="\t")
    assert m.fold.tolist()[-1] == "pooled" and m.n.iloc[-1] == len(pd.read_csv(wd / "SIM" / "meta.csv"))
    assert (wd / "SIM" / "evaluation" / "roc_pr.png").stat().st_size > 10_000
    from chromoformer.data.store import BinnedStore
    from chromoformer.engine.checkpoint import read_checkpoint

    assert BinnedStore(wd / "SIM" / "store").manifest["assembly"] == "simgenome1"  # the sheet's, recorded
    for f in (1, 2, 3, 4):
        best = read_checkpoint(wd / "SIM" / "runs" / f"fold{f}" / "best.pt")
        assert best["data"]["assembly"] == "simgenome1"
        assert "optimizer" not in best and "optimizer" in read_checkpoint(wd / "SIM" / "runs" / f"fold{f}" / "last.pt")
        log = (wd / "logs" / "SIM" / f"train-fold{f}.log").read_text()
        assert f"fold {f} epoch 1/1:" in log and "\r" not in log  # plain progress lines, no progress-bar frames
    assert "fold 1 epoch 1/1:" in r.stderr  # and the same lines on the terminal
    assert "SIM: held-out AUROC fold1 " in r.stdout and "predictions of every gene" in r.stdout  # the summary
    # every gene through the 4-fold ensemble, with the folds' spread
    pred = pd.read_csv(wd / "SIM" / "predictions.csv")
    assert pred.gene_id.tolist() == pd.read_csv(wd / "SIM" / "meta.csv").gene_id.tolist()
    assert pred.prediction.between(0, 1).all() and (pred.prediction_sd >= 0).all()
    for step in ("genes.tsv", "SIM/metadata.tsv", "SIM/signals-H3K4me3.tsv", "SIM/train-fold1.tsv", "SIM/predict.tsv"):
        assert pd.read_csv(wd / "benchmarks" / step, sep="\t").max_rss.notna().all()  # per-step cost recorded
    # resumable: a second run has nothing to do
    r2 = subprocess.run(["chromoformer", "workflow", "--config", str(cfg), "--directory", str(wd), "--cores", "2",
                         "--", "--dry-run"], capture_output=True, text=True)
    assert r2.returncode == 0 and "Nothing to be done" in r2.stdout + r2.stderr


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_sample_with_missing_mark_is_a_clear_error(tmp_path):
    sheet = {"annotation": "a.gtf", "expression": "e.tsv",
             "samples": {"S1": {"interactions": "i.tsv", "signals": {m: "x.bam" for m in MARKS[:-1]}}}}
    cfg = tmp_path / "samples.yaml"
    cfg.write_text(yaml.safe_dump(sheet))
    r = subprocess.run(["chromoformer", "workflow", "--config", str(cfg), "--directory", str(tmp_path / "wf"),
                        "--cores", "1", "--", "--dry-run"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "sample S1 has no signal file for mark(s) H3K9ac" in r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_two_mark_sheet_trains_a_two_mark_model(tmp_path):
    """The sheet's marks flow into the store and from it into the model: no n_feats to edit by hand."""
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    from chromoformer.engine.loading import load_model

    two = ["H3K4me3", "H3K27ac"]
    _, wd, _ = _run_simulated(tmp_path, two, marks=two, folds=[1, 2])
    lm = load_model(wd / "SIM" / "runs" / "fold1" / "best.pt")
    assert lm.marks == tuple(two) and lm.config.n_feats == 2
    assert (wd / "SIM" / "evaluation" / "metrics.tsv").is_file()
    assert (wd / "genes.dropped.tsv").is_file()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_workflow_through_a_cluster_executor(tmp_path):
    """The same workflow submitted job by job through snakemake's cluster-generic executor (a
    "cluster" of background processes: docs/cluster/local-*.sh), then re-run: nothing to do."""
    pytest.importorskip("snakemake_executor_plugin_cluster_generic")
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    docs = Path(__file__).resolve().parents[1] / "docs" / "cluster"
    spool = tmp_path / "spool"
    cluster = ["--", "--executor", "cluster-generic", "--cluster-generic-submit-cmd",
               f"LOCAL_CLUSTER_DIR={spool} bash {docs / 'local-submit.sh'}", "--cluster-generic-status-cmd",
               f"LOCAL_CLUSTER_DIR={spool} bash {docs / 'local-status.sh'}", "--jobs", "4",
               "--seconds-between-status-checks", "1", "--latency-wait", "5"]
    two = ["H3K4me3", "H3K27ac"]
    p = simulate(tmp_path / "sim", SimConfig(span_mb=16))
    sheet = {"annotation": str(p["gtf"]), "chrom_sizes": str(p["sizes"]), "expression": str(p["expression"]),
             "marks": two, "samples": {"SIM": {"interactions": str(p["pchic"]),
                                               "signals": {m: str(p[f"bam_{m}"]) for m in two}}},
             "train": {"epochs": 1, "folds": [1, 2], "extra": "--num-workers 0"}}
    cfg = tmp_path / "samples.yaml"
    cfg.write_text(yaml.safe_dump(sheet))
    wd = tmp_path / "wf"
    cmd = ["chromoformer", "workflow", "--config", str(cfg), "--directory", str(wd), "--cores", "2"]
    r = subprocess.run([*cmd, *cluster], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = sorted(spool.glob("*.exit"))
    # genes, metadata, one signals job per mark, the merge, 2 folds, evaluate: each its own submission
    assert len(jobs) >= 8 and all(j.read_text().strip() == "0" for j in jobs)
    assert (wd / "SIM" / "evaluation" / "metrics.tsv").is_file()
    assert not (wd / "SIM" / "store_parts").exists() or not any((wd / "SIM" / "store_parts").iterdir())  # temp()
    from chromoformer.data.store import BinnedStore

    assert BinnedStore(wd / "SIM" / "store").marks == tuple(two)
    again = subprocess.run([*cmd, *cluster, "--dry-run"], capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


PAYLOADS = ("$(touch {m}1)", "`touch {m}2`", "; touch {m}3 #", "' ; touch {m}4 ; '", '" && touch {m}5 "')


def _planted(marker: str, n: int) -> str:
    return PAYLOADS[n % len(PAYLOADS)].format(m=marker)


def test_snakefile_has_no_shell_directive():
    """Every rule starts its command from a list of words: no `shell:` for a sheet value to reach."""
    from chromoformer.workflow import snakefile

    text = snakefile().read_text()
    assert "run:" in text and not re.search(r"^\s*shell:", text, re.M)
    assert "shell=True" not in text and "os.system" not in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_payloads_in_every_sheet_field_never_run(tmp_path):
    """Shell payloads in every file name and free-text value run the workflow to its end (they are plain
    words to every command); in names (samples, marks) and in train.extra they are refused or fail
    the step. No marker file appears anywhere."""
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    from chromoformer.errors import SampleSheetError
    from chromoformer.workflow.sheet import check_sheet

    marker = "PWNED"  # a bare name: a payload would create it in its shell's folder (the run's, or the sheet's)
    p = simulate(tmp_path / "sim", SimConfig(span_mb=16))
    two = ["H3K4me3", "H3K27ac"]
    # every input file renamed to a name holding a payload
    files = {k: p[k] for k in ("gtf", "sizes", "expression", "pchic", *(f"bam_{m}" for m in two))}
    hostile = {}
    for n, (k, f) in enumerate(files.items()):
        new = f.with_name(f"x{_planted(marker, n)}{''.join(f.suffixes)}")
        f.rename(new)
        if Path(f"{f}.bai").exists():
            Path(f"{f}.bai").rename(f"{new}.bai")
        hostile[k] = str(new)
    column = f"SIM{_planted(marker, 7)}"
    e = pd.read_csv(hostile["expression"], sep="\t")
    e.rename(columns={"SIM": column}).to_csv(hostile["expression"], sep="\t", index=False)
    config = tmp_path / f"c{_planted(marker, 8)}.yaml"
    from chromoformer.config import load_config

    config.write_text(yaml.safe_dump(load_config().to_dict() | {"n_feats": 2}))
    sheet = {"annotation": hostile["gtf"], "chrom_sizes": hostile["sizes"], "expression": hostile["expression"],
             "assembly": f"sim{_planted(marker, 9)}", "biotype": "any", "marks": two,
             "interaction_options": {"weight": f"w{_planted(marker, 10)}"},
             "samples": {"SIM": {"interactions": hostile["pchic"], "expression_column": column,
                                 "signals": {m: hostile[f"bam_{m}"] for m in two}}},
             "train": {"epochs": 1, "folds": [1], "config": str(config), "extra": "--num-workers 0"}}
    cfg, wd = tmp_path / "samples.yaml", tmp_path / "wf"
    r = _workflow(sheet, cfg, wd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (wd / "SIM" / "evaluation" / "metrics.tsv").is_file()
    # train.extra is split into words, never given to a shell: the payload reaches train as a bad option
    sheet["train"]["extra"] = f"--num-workers 0 {_planted(marker, 11)}"
    r = _workflow(sheet, cfg, tmp_path / "wf2")
    assert r.returncode == 2 and "snakemake failed" in r.stderr
    # names are refused before any job runs
    for where in ("sample", "mark"):
        bad = dict(sheet, train={"epochs": 1})
        name = f"S{_planted(marker, 12)}"
        if where == "sample":
            bad["samples"] = {name: sheet["samples"]["SIM"]}
        else:
            bad["marks"] = [two[0], name]
            bad["samples"] = {"SIM": dict(sheet["samples"]["SIM"], signals={two[0]: hostile["bam_H3K4me3"],
                                                                            name: hostile["bam_H3K27ac"]})}
        cfg.write_text(yaml.safe_dump(bad))
        with pytest.raises(SampleSheetError, match="is not a valid name"):
            check_sheet(cfg)
    leaked = [q for d in (tmp_path, Path.cwd()) for q in d.rglob("PWNED*") if re.fullmatch(r"PWNED\d+", q.name)]
    assert not leaked, leaked


def _pair_sheet(pairs) -> dict:
    signals = {m: "x.bam" for m in MARKS}
    return {"annotation": "a.gtf", "expression": "e.tsv", "pairs": pairs,
            "samples": {"S1": {"interactions": "i.tsv", "signals": signals},
                        "S2": {"interactions": "i.tsv", "signals": signals}}}


@pytest.mark.parametrize("pairs, message", [
    ([{"a": "S1", "b": "S3"}], "pairs[0].b names an unknown sample 'S3'; samples are S1, S2"),
    ([{"a": "S1"}], "pairs[0] has no 'b'"),
    ([{"a": "S1", "b": "S1"}], "pairs sample S1 with itself"),
    ([{"a": "S1", "b": "S2"}, {"a": "S2", "b": "S1", "name": "S2_vs_S1"}], "both named 'S2_vs_S1'"),
    ([{"a": "S1", "b": "S2", "cell": "x"}], "unknown key 'pairs[0].cell'"),
    (["S1-S2"], "pairs[0] must be a mapping"),
    ([{"a": "S1", "b": "S2", "name": "../up"}], "is not a valid name"),
    ({"a": "S1"}, "'pairs' must be list"),
])
def test_a_bad_pair_in_the_sheet_is_one_line(tmp_path, pairs, message):
    from chromoformer.errors import SampleSheetError
    from chromoformer.workflow.sheet import check_sheet_values

    with pytest.raises(SampleSheetError) as e:
        check_sheet_values(_pair_sheet(pairs), tmp_path / "samples.yaml", check_files=False)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_pairs_default_to_b_vs_a(tmp_path):
    from chromoformer.workflow.sheet import check_sheet_values, pair_name

    sheet = check_sheet_values(_pair_sheet([{"a": "S1", "b": "S2"}, {"a": "S2", "b": "S1", "name": "rev"}]),
                               tmp_path / "samples.yaml", check_files=False)
    assert [pair_name(p) for p in sheet["pairs"]] == ["S2_vs_S1", "rev"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_workflow_trains_evaluates_and_predicts_a_named_pair(tmp_path):
    """Two samples (the second a copy with its own, perturbed expression column; the same reads, so this checks
    the plumbing, not accuracy) and one pair: pairs/SIM2_vs_SIM/ gets 2 folds of chromoformer-diff, their
    evaluation and predictions."""
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    import numpy as np

    p = simulate(tmp_path / "sim", SimConfig(span_mb=16))
    expr = pd.read_csv(p["expression"], sep="\t")
    rng = np.random.default_rng(0)
    expr["SIM2"] = (expr["SIM"] * np.exp2(rng.normal(0, 1.5, len(expr)))).round(4)
    expr.to_csv(p["expression"], sep="\t", index=False)
    signals = {m: str(p[f"bam_{m}"]) for m in MARKS}
    sheet = {"annotation": str(p["gtf"]), "chrom_sizes": str(p["sizes"]), "expression": str(p["expression"]),
             "samples": {s: {"interactions": str(p["pchic"]), "expression_column": s, "signals": signals}
                         for s in ("SIM", "SIM2")},
             "pairs": [{"a": "SIM", "b": "SIM2"}],
             "train": {"epochs": 1, "folds": [1, 2], "extra": "--num-workers 0"}}
    r = _workflow(sheet, tmp_path / "samples.yaml", tmp_path / "wf")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    d = tmp_path / "wf" / "pairs" / "SIM2_vs_SIM"
    pred = pd.read_csv(d / "predictions.csv")
    assert list(pred.columns[:5]) == ["gene_id", "expr_a", "expr_b", "lfc", "call"] and "lfc_sd" in pred
    assert pred.gene_id.tolist() == pd.read_csv(tmp_path / "wf" / "SIM" / "meta.csv").gene_id.tolist()
    m = pd.read_csv(d / "evaluation" / "metrics.tsv", sep="\t")
    assert {"pearson", "spearman", "call_auroc"} <= set(m.columns) and m.fold.tolist()[-1] == "pooled"
    from chromoformer.engine.loading import load_model

    assert load_model(d / "runs" / "fold1" / "best.pt").spec.task == "diff"
