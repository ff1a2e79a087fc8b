"""First contact: fast, complete --help; numbers shown with their meaning; sheet paths."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
import yaml

from chromoformer import cli


def _all_parsers():
    names = [n for n, *_ in cli.SUBCOMMANDS] + ["preprocess", "build-store", "simulate", "inspect", "export-weights"]
    for name in names:
        p = cli.build_parser([name])
        sp = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        yield name, sp
        for a in sp._actions:
            if isinstance(a, argparse._SubParsersAction):
                yield from ((f"{name} {k}", v) for k, v in a.choices.items())


def test_every_option_has_help_and_defaults_are_shown():
    missing = [(n, a.dest) for n, p in _all_parsers() for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not missing
    text = dict(_all_parsers())["predict"].format_help()
    assert "(default: 64)" in " ".join(text.split())


def test_top_level_help_does_not_import_torch():
    code = ("import sys\nfrom chromoformer.cli import build_parser\n"
            "try:\n    build_parser(['--help']).parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "False", r.stdout + r.stderr


def test_inspect_shows_the_original_x100_scale(demo, capsys):
    cli.main(["inspect", str(demo / "scrambled-clf-fold1.pt")])
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("last_val_auc"))
    assert "stored x100" in line and line.split()[1].startswith("0.") or line.split()[1] == "1.000"


def test_sheet_paths_resolve_against_the_sheet_folder(tmp_path, monkeypatch):
    from chromoformer.workflow.sheet import check_sheet

    d = tmp_path / "project"
    d.mkdir()
    for f in ("a.gtf", "e.tsv", "p.tsv", "r.bed"):
        (d / f).write_text("x")
    sheet = {"annotation": "a.gtf", "expression": "e.tsv", "marks": ["H3K4me3"],
             "samples": {"S": {"interactions": "p.tsv", "signals": {"H3K4me3": "r.bed"}}}}
    (d / "samples.yaml").write_text(yaml.safe_dump(sheet))
    monkeypatch.chdir(tmp_path)  # not the sheet's folder
    s = check_sheet(d / "samples.yaml")
    assert s["annotation"] == str(d / "a.gtf") and s["samples"]["S"]["signals"]["H3K4me3"] == str(d / "r.bed")


@pytest.mark.parametrize("column,value,shown", [("lr", 3e-5 * 0.87, "2.61e-05"), ("seconds", 12.34567, "12.3")])
def test_report_formats_lr_and_seconds(column, value, shown):
    from chromoformer.results.report import _fmt

    assert _fmt(column)(value) == shown


def test_each_flag_has_one_spelling_and_old_spellings_stay_hidden_aliases():
    """-o/--output and -k/--checkpoint everywhere; --out and a positional checkpoint still parse but are not shown."""
    parsers = dict(_all_parsers())
    for name, p in parsers.items():
        strings = {s for a in p._actions for s in a.option_strings}
        text = p.format_help()
        assert "--out " not in text and "--out," not in text, name
        if "--out" in strings:
            assert {"-o", "--output"} <= strings, name
        if any(a.dest == "checkpoint" for a in p._actions):
            assert {"-k", "--checkpoint"} <= strings, name
    writers = ["predict", "evaluate", "compare", "interpret", "export", "build-store", "simulate", "export-weights",
               "preprocess genes", "preprocess metadata", "preprocess signals", "preprocess merge-stores",
               "preprocess export-npy"]
    for name in writers:
        assert "-o" in {s for a in parsers[name]._actions for s in a.option_strings}, name
    ev = parsers["evaluate"]
    assert ev.parse_args(["--runs", "a.csv", "--out", "x"]).output == "x"
    assert ev.parse_args(["--runs", "a.csv", "-o", "x"]).output == "x"
    verify = parsers["verify"]
    old, new = verify.parse_args(["a.pt"]), verify.parse_args(["-k", "a.pt"])
    from chromoformer.cli.options import checkpoint_list

    assert checkpoint_list(old, several=True) == checkpoint_list(new, several=True) == ["a.pt"]


def test_num_workers_has_one_default_across_commands():
    """--num-workers: one default (auto) everywhere; auto starts workers only for loops long enough to gain."""
    from chromoformer.data.loader import AUTO_MIN_BATCHES, auto_workers

    parsers = dict(_all_parsers())
    flags = {n: next(a for a in p._actions if a.dest == "num_workers") for n, p in parsers.items()
             if any(a.dest == "num_workers" for a in p._actions)}
    assert set(flags) >= {"train", "predict", "compare"}
    assert {a.default for a in flags.values()} == {"auto"}
    assert parsers["predict"].parse_args(["-m", "m", "-d", "d", "-k", "k", "-o", "o"]).num_workers is None
    assert parsers["predict"].parse_args(["-m", "m", "-d", "d", "-k", "k", "-o", "o", "--num-workers", "2"]
                                         ).num_workers == 2
    assert auto_workers(AUTO_MIN_BATCHES - 1) == auto_workers(None) == 0
    assert auto_workers(AUTO_MIN_BATCHES) == min(4, max(0, (os.cpu_count() or 1) - 1))


def test_every_help_line_states_its_default_once_and_never_none():
    """The formatter adds ``(default: X)`` only where the help states none itself and X says something."""
    twice, none = [], []
    for name, p in _all_parsers():
        for a in p._actions:
            text = " ".join(p._get_formatter()._expand_help(a).split()) if a.help not in (None, argparse.SUPPRESS) \
                else ""
            if text.count("(default") > 1:
                twice.append((name, a.dest, text))
            if "(default: None)" in text:
                none.append((name, a.dest))
    assert twice == [] and none == []
    shown = " ".join(dict(_all_parsers())["train"].format_help().split())
    assert shown.count("(default: clf)") == 1 and "--use-wandb the original's flag: the same as --logger wandb" in shown


def test_a_parser_built_on_its_own_describes_its_own_command_only():
    """Several commands share a cli module; each standalone parser (the original's `python -m chromoformer.train`
    above all) describes its own command, never its module-mates'."""
    from chromoformer.cli.checkpoints import build_verify_parser
    from chromoformer.cli.train import build_train_parser

    train = build_train_parser().format_help()
    assert "Kept from the original" in train and "chromoformer compare" not in train and "comparison.tsv" not in train
    verify = build_verify_parser().format_help()
    assert "recompute a checkpoint's stored validation metrics" in verify and "predictions csv" not in verify
