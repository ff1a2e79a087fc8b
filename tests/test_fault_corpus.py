"""Bad-input corpus: every input kind x {missing, empty, truncated, wrong type, wrong shape,
NaN/inf, out of range, inconsistent with another input}.

Each case must end with exit code 2, exactly one line ``chromoformer: error: ...`` that
names the offending file (and the problem), no traceback, and no output under a final
name. A case that exits 0 would be a silently wrong result; a traceback fails the test.
The corpus runs on a synthetic dataset and on the real demo genes (../shared). The cases live in
tests/corpus/, one module per input family; every one goes through the one :func:`check` below.
"""

from __future__ import annotations

import os

import pytest

from chromoformer.cli import main
from corpus import bounds, checkpoints, commands, data, hostile, preprocess, results, workflow
from corpus.builders import demo_inputs_in, synthetic_inputs_in
from fault_inputs import Case, Inputs

FAMILIES = (data, checkpoints, commands, results, preprocess, workflow, hostile, bounds)
CASES = {name: case for family in FAMILIES for name, case in family.CASES.items()}
assert len(CASES) == sum(len(f.CASES) for f in FAMILIES), "a case name is used in two families"


@pytest.fixture(scope="module")
def demo_inputs(demo, tmp_path_factory) -> Inputs:
    return demo_inputs_in(tmp_path_factory.mktemp("corpus-demo"), demo)


@pytest.fixture(scope="module")
def synthetic_inputs(tmp_path_factory) -> Inputs:
    return synthetic_inputs_in(tmp_path_factory.mktemp("corpus"))


def run_case(case: Case, capsys) -> tuple[int, list[str], str]:
    saved = {k: os.environ.get(k) for k in case.env}
    os.environ.update(case.env)
    try:
        main(case.argv)
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    err = capsys.readouterr().err.replace("\r", "\n")
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    return code, errors, err


def check(case: Case, capsys) -> None:
    code, errors, err = run_case(case, capsys)
    assert code == 2, f"exit {code} (0 = a silently wrong result); stderr: {err[-1500:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(errors) == 1 and errors[0].startswith(("chromoformer: error: ", "chromoformer ")), errors or err[-800:]
    for part in case.expect:
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    for p in case.absent:
        assert not p.exists(), f"{p} was written although the command failed"
    for p, content in case.keep.items():
        assert p.is_file() and p.read_bytes() == content, f"the input {p} was changed or removed"


@pytest.mark.parametrize("name", list(CASES))
def test_synthetic(name, synthetic_inputs, tmp_path, capsys):
    inp = Inputs(**{**synthetic_inputs.__dict__, "tmp": tmp_path})
    check(CASES[name](inp), capsys)


DEMO_KINDS = ("meta", "label", "start", "strand", "split", "expression", "score", "scores", "neighbor", "neighbors",
              "too", "duplicate", "empty", "eid", "gene", "npy", "store", "ckpt", "ensemble")


@pytest.mark.parametrize("name", [n for n in CASES if n.split()[0] in DEMO_KINDS])
def test_real_demo(name, demo_inputs, tmp_path, capsys):
    inp = Inputs(**{**demo_inputs.__dict__, "tmp": tmp_path})
    check(CASES[name](inp), capsys)


def test_corpus_counts():
    """The corpus covers every input kind (the closing note reports these counts)."""
    kinds = {name.split()[0] for name in CASES}
    assert {"meta", "npy", "store", "ckpt", "config", "train", "predict", "evaluate", "gtf", "saf", "genes",
            "expression", "featurecounts", "pchic", "reads", "sheet", "interp", "export", "simulate"} <= kinds
    assert len(CASES) >= 150
