"""Strict schema of the workflow's YAML sample sheet (see docs/workflow.md).

Unknown keys (e.g. a typo such as ``epocs``), wrong types, missing files and samples
without every mark are errors naming the key, before any job runs.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from chromoformer.config import MARKS, MAX_EPOCHS
from chromoformer.engine.precision import PRECISIONS
from chromoformer.errors import SampleSheetError
from chromoformer.files.names import check_label, check_name
from chromoformer.preprocess.assembly import canonical, of_file
from chromoformer.workflow.remote_inputs import DOWNLOADS, is_workflow_output, resolve_remote_inputs
from chromoformer.yamlfile import read_yaml

FILE = (str, dict)  # a path, a remote name (roadmap:E003/H3K4me3, ...) or {url: ..., md5: ...}
TOP = {"annotation": FILE, "expression": FILE, "expression_unit": str, "samples": dict, "chrom_sizes": FILE,
       "biotype": str, "marks": list, "assembly": str,
       "signal_options": dict, "interaction_options": dict, "train": dict, "pairs": list,
       "downloads": dict, "pchic_tables": dict}  # the last two: written into the resolved sheet
SAMPLE = {"interactions": FILE, "signals": dict, "expression_column": str}
SIGNAL_OPTIONS = {"extend": int, "shift": int, "min_mapq": int, "skip_duplicates": bool, "skip_secondary": bool,
                  "normalisation": str}
INTERACTION_OPTIONS = {"min_score": (int, float), "i_max": int, "w_max": int, "weight": str, "max_distance": int}
TRAIN = {"folds": list, "epochs": int, "config": str, "extra": str, "threads": int, "precision": str}
PAIR = {"a": str, "b": str, "name": str}


def fold_threads(train: dict, cores: int, local: bool = True) -> int:
    """Threads of one training job: the sheet's ``train.threads``, else folds before threads.

    Run locally on ``cores`` cores, as many folds as fit run at once with ``cores // n_folds``
    threads each (at least 1): on 2 cores two 1-thread folds at a time, whose epochs run 1.47x
    faster than one 2-thread fold at a time (a second process scales better than a second
    thread; bench/fold_parallel.py). On a cluster (each job its own node) 2, unless a
    profile's ``set-threads`` says otherwise.
    """
    if "threads" in train:
        return train["threads"]
    if not local:
        return 2
    return max(1, int(cores) // len(train.get("folds", [1, 2, 3, 4])))


def pair_name(pair: dict) -> str:
    """A differential pair's folder under ``pairs/``: its ``name``, else ``<b>_vs_<a>`` (B's change over A)."""
    return pair.get("name") or f"{pair['b']}_vs_{pair['a']}"


def check_pairs(pairs: list, samples: dict, path: Path) -> None:
    """``pairs``: each ``{a: SAMPLE, b: SAMPLE[, name: NAME]}`` names two different samples of the sheet; the
    names (folders of the run) are distinct."""
    seen: dict[str, int] = {}
    for i, p in enumerate(pairs):
        where = f"pairs[{i}]"
        if not isinstance(p, dict):
            raise SampleSheetError(f"{path}: {where} must be a mapping with a and b (two sample names), got {p!r}")
        _keys(p, PAIR, f"{where}.", path)
        for k in ("a", "b"):
            if k not in p:
                raise SampleSheetError(f"{path}: {where} has no '{k}' (the pair's cell {k.upper()}: a sample name)")
            if p[k] not in samples:
                raise SampleSheetError(f"{path}: {where}.{k} names an unknown sample {p[k]!r}; samples are "
                                       f"{', '.join(map(str, samples))}")
        if p["a"] == p["b"]:
            raise SampleSheetError(f"{path}: {where} pairs sample {p['a']} with itself; a pair is two cell types")
        name = pair_name(p)
        check_name(name, "pair name", f"{path}: {where}", SampleSheetError)
        if name in seen:
            raise SampleSheetError(f"{path}: {where} and pairs[{seen[name]}] are both named {name!r}")
        seen[name] = i


def _keys(d: dict, schema: dict, where: str, path: Path) -> None:
    for k, v in d.items():
        if k not in schema:
            raise SampleSheetError(f"{path}: unknown key '{where}{k}'; allowed: {', '.join(schema)}")
        want = schema[k]
        if isinstance(v, bool) and want is not bool and bool not in (want if isinstance(want, tuple) else (want,)):
            raise SampleSheetError(f"{path}: '{where}{k}' must be {getattr(want, '__name__', 'a number')}, got {v!r}")
        if not isinstance(v, want):
            name = want.__name__ if isinstance(want, type) else (
                "a file name or {url, md5}" if want == FILE else "a number")
            raise SampleSheetError(f"{path}: '{where}{k}' must be {name}, got {v!r}")


def _file(value: str, where: str, path: Path) -> str:
    """``value`` resolved against the sheet's folder (as snakemake users expect), as an absolute path; a file
    the workflow downloads or makes (``downloads/...``, ``pchic/...``) stays relative to its directory."""
    if is_workflow_output(value):
        return value
    if not isinstance(value, str):
        raise SampleSheetError(f"{path}: {where}: expected a file name, got {value!r}")
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = path.parent / p
    if not p.is_file():
        raise SampleSheetError(f"{path}: {where}: file {value} not found (relative paths are read from the "
                               "sample sheet's folder)")
    return str(p.resolve())


WEIGHTS = ("weight", "none")  # interaction_options.weight: the .cool balancing column, or raw counts
UNITS = ("rpkm", "fpkm", "tpm", "counts")


def _check_values(sheet: dict, path: Path) -> None:
    """Free-text values: no control characters; ``train.extra`` splits into options (never a shell)."""
    for key in ("biotype", "assembly"):
        if key in sheet:
            check_label(sheet[key], key, str(path), SampleSheetError)
            if not sheet[key].strip():
                raise SampleSheetError(f"{path}: '{key}' is empty")
    w = sheet.get("interaction_options", {}).get("weight")
    if w is not None:
        check_label(w, "interaction_options.weight", str(path), SampleSheetError)
    norm = sheet.get("signal_options", {}).get("normalisation")
    if norm is not None and norm not in ("raw", "rpm"):
        raise SampleSheetError(f"{path}: signal_options.normalisation must be raw or rpm, got {norm!r}")
    threads = sheet.get("train", {}).get("threads")
    if threads is not None and threads < 1:
        raise SampleSheetError(f"{path}: train.threads must be at least 1, got {threads}")
    epochs = sheet.get("train", {}).get("epochs")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise SampleSheetError(f"{path}: train.epochs must be 1..{MAX_EPOCHS}, got {epochs}")
    precision = sheet.get("train", {}).get("precision")
    if precision is not None and precision not in PRECISIONS:
        raise SampleSheetError(f"{path}: train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    folds = sheet.get("train", {}).get("folds")
    if folds is not None and (not folds or not all(type(f) is int and 1 <= f <= 4 for f in folds)
                              or len(set(folds)) != len(folds)):
        raise SampleSheetError(f"{path}: train.folds must be distinct folds of 1..4, got {folds!r}")
    if "extra" in sheet.get("train", {}):
        extra_options(sheet["train"]["extra"], path)


def extra_options(extra: str, path: str | Path) -> list[str]:
    """``train.extra`` as a list of command-line words (split like a shell would, never run by one)."""
    check_label(extra, "train.extra", str(path), SampleSheetError)
    try:
        words = shlex.split(extra)
    except ValueError as e:
        raise SampleSheetError(f"{path}: train.extra {extra!r}: {e}") from None
    if words and not words[0].startswith("--"):
        raise SampleSheetError(f"{path}: train.extra {extra!r} must be train options starting with --")
    return words


def check_sheet(path: str | Path) -> dict[str, Any]:
    """Read and validate a sample sheet; returns it as a dict with every file path made absolute."""
    path = Path(path)
    if not path.is_file():
        raise SampleSheetError(f"{path}: sample sheet not found")
    return check_sheet_values(read_yaml(path, SampleSheetError, "sample sheet"), path)


def check_sheet_values(sheet: Any, path: Path, *, check_files: bool = True) -> dict[str, Any]:
    """Validate a parsed sample sheet (read from ``path``; relative file paths are read from its folder).

    ``check_files=False`` checks names and values only: for the resolved sheet that
    :func:`check_sheet` already checked, re-read by every job of the workflow.
    """
    if not isinstance(sheet, dict):
        raise SampleSheetError(f"{path}: expected a mapping of keys, got {type(sheet).__name__}")
    for k in ("annotation", "expression", "samples"):
        if k not in sheet:
            raise SampleSheetError(f"{path}: missing top-level key '{k}'")
    _keys(sheet, TOP, "", path)
    for key, schema in (("signal_options", SIGNAL_OPTIONS), ("interaction_options", INTERACTION_OPTIONS),
                        ("train", TRAIN)):
        _keys(sheet.get(key, {}), schema, f"{key}.", path)
    marks = sheet.get("marks", list(MARKS))
    if not marks or not all(isinstance(m, str) for m in marks) or len(set(marks)) != len(marks):
        raise SampleSheetError(f"{path}: 'marks' must be a list of distinct mark names, got {marks!r}")
    for m in marks:  # marks become folder names, wildcards and command words
        check_name(m, "mark name", f"{path}: marks", SampleSheetError)
    _check_values(sheet, path)
    sheet["marks"] = list(marks)  # the resolved sheet names them: they become the store's and model's marks
    unit = sheet.get("expression_unit", "rpkm")
    if unit not in UNITS:
        raise SampleSheetError(f"{path}: expression_unit must be rpkm, fpkm, tpm or counts, got {unit!r}")
    if not sheet["samples"]:
        raise SampleSheetError(f"{path}: 'samples' is empty")
    for name, s in sheet["samples"].items():
        check_name(name, "sample name", f"{path}: samples", SampleSheetError)  # a folder of the run
        if not isinstance(s, dict):
            raise SampleSheetError(f"{path}: sample {name} must be a mapping")
        _keys(s, SAMPLE, f"samples.{name}.", path)
        for k in ("interactions", "signals"):
            if k not in s:
                raise SampleSheetError(f"{path}: sample {name} has no '{k}'")
        if "expression_column" in s:
            check_label(s["expression_column"], "expression_column", f"{path}: samples.{name}", SampleSheetError)
        unknown = sorted(map(str, set(s["signals"]) - set(marks)))
        if unknown:
            raise SampleSheetError(f"{path}: sample {name}: signal(s) for unknown mark(s) {', '.join(unknown)}; "
                                   f"marks are {', '.join(marks)} (set 'marks' to use others)")
        missing = [m for m in marks if m not in s["signals"]]
        if missing:
            raise SampleSheetError(f"{path}: sample {name} has no signal file for mark(s) {', '.join(missing)}")
    check_pairs(sheet.get("pairs", []), sheet["samples"], path)
    if check_files:
        if "downloads" in sheet or "pchic_tables" in sheet:
            raise SampleSheetError(f"{path}: 'downloads' and 'pchic_tables' are written by chromoformer workflow; "
                                   "name remote files where they are used (roadmap:E003/H3K4me3, a URL, ...)")
        resolve_remote_inputs(sheet, path)
    check_downloads(sheet, path)
    if not check_files:
        return sheet
    # structure first, then files: the first error is the most telling one
    for k in ("annotation", "expression", "chrom_sizes"):
        if k in sheet:
            sheet[k] = _file(sheet[k], k, path)
    if "config" in sheet.get("train", {}):
        sheet["train"]["config"] = _file(sheet["train"]["config"], "train.config", path)
    for name, s in sheet["samples"].items():
        s["signals"] = {m: _file(str(f), f"sample {name}, mark {m}", path) for m, f in s["signals"].items()}
        s["interactions"] = _file(s["interactions"], f"sample {name}, interactions", path)
    inputs = [("the annotation", sheet["annotation"], "annotation")]
    inputs += [("chrom_sizes", sheet["chrom_sizes"], "sizes")] if "chrom_sizes" in sheet else []
    for name, s in sheet["samples"].items():
        inputs += [(f"sample {name}, mark {m}", f, "signal") for m, f in s["signals"].items()]
        inputs.append((f"sample {name}, interactions", s["interactions"], "contacts"))
    inputs = [i for i in inputs if not is_workflow_output(i[1])]  # not downloaded yet: checked where read
    assembly = check_one_assembly(inputs, sheet.get("assembly"), str(path))
    if assembly:
        sheet["assembly"] = assembly  # recorded in the store's manifest and from there in every checkpoint
    return sheet


def check_downloads(sheet: dict, path: Path) -> None:
    """The resolved sheet's ``downloads`` (path -> urls, md5, size) and ``pchic_tables`` (tissue -> two
    downloads) hold only what :mod:`chromoformer.workflow.remote_inputs` writes: safe names, http(s) URLs."""
    for local, d in sheet.get("downloads", {}).items():
        parts = str(local).split("/")
        ok = (len(parts) == 3 and parts[0] == DOWNLOADS and isinstance(d, dict) and set(d) <= {"urls", "md5", "size"}
              and isinstance(d.get("urls"), list) and d["urls"]
              and all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in d["urls"]))
        if ok:
            for part in parts[1:]:
                check_name(part, "download name", f"{path}: downloads", SampleSheetError)
            for u in d["urls"]:
                check_label(u, "download URL", f"{path}: downloads", SampleSheetError)
        if not ok:
            raise SampleSheetError(f"{path}: downloads: {local!r} is not downloads/KIND/NAME with a list of http(s) "
                                   "urls (and optionally md5 and size)")
    for tissue, pickles in sheet.get("pchic_tables", {}).items():
        check_name(tissue, "pcHi-C tissue", f"{path}: pchic_tables", SampleSheetError)
        if not (isinstance(pickles, list) and len(pickles) == 2 and all(p in sheet.get("downloads", {})
                                                                            for p in pickles)):
            raise SampleSheetError(f"{path}: pchic_tables: {tissue} must name its two downloaded pickles")


def check_one_assembly(inputs: list[tuple[str, str | Path, str]], declared: str | None, where: str) -> str | None:
    """All ``(label, path, kind)`` inputs that can be named must name one assembly (the declared one, if any).

    Returns the assembly (declared, else the one found, else None). Raises
    :class:`SampleSheetError` with one line naming the two disagreeing inputs.
    """
    want = canonical(declared) if declared else None
    first: tuple[str, str, str] | None = None  # (assembly, label, evidence)
    for label, path, kind in inputs:
        a, why = of_file(path, kind)
        if a is None:
            continue
        if want is not None and a != want:
            said = declared if declared == want else f"{declared} ({want})"
            raise SampleSheetError(f"{where}: {label} ({Path(path).name}) is {a} ({why}) but the sheet says "
                                   f"assembly {said}; use files of one assembly (or lift them over)")
        if first is not None and a != first[0]:
            raise SampleSheetError(f"{where}: mixed assemblies: {first[1]} is {first[0]} ({first[2]}) but {label} "
                                   f"({Path(path).name}) is {a} ({why}); use files of one assembly (or lift them over)")
        first = first or (a, f"{label} ({Path(path).name})", why)
    return want or (first[0] if first else None)


def simulated_sheet(cells: dict[str, dict[str, Path]], expression: Path, pair: bool = False) -> dict[str, Any]:
    """A ready sample sheet for simulated cell types (``chromoformer simulate`` writes it beside the data):
    ``cells`` maps a sample name to what :func:`chromoformer.preprocess.simulate.simulate` returned; the first
    cell's annotation and chromosome sizes serve all (they share genes); ``expression`` holds a column per
    sample; ``pair`` adds the differential pair of the first two cells (B's change over A)."""
    first = next(iter(cells.values()))
    sheet: dict[str, Any] = {
        "annotation": str(first["gtf"]), "chrom_sizes": str(first["sizes"]), "expression": str(expression),
        "samples": {name: {"interactions": str(p["pchic"]), "expression_column": name,
                           "signals": {m: str(p[f"bam_{m}"]) for m in MARKS}} for name, p in cells.items()},
        "train": {"epochs": 6}}
    if pair:
        a, b = list(cells)[:2]
        sheet["pairs"] = [{"a": a, "b": b}]
    return sheet
