"""Hostile names through every writer: a user's string that becomes a file name, an HTML page or a
field of a track file stays inside its folder and escapes (or is refused) in every format.

The names: path traversal (``../``, ``/``), shell words (``;``, ``$()``, backticks, quotes), the
field separators of our formats (``:``, ``,``, space), HTML, unicode, 300 bytes, and ``.``/``..``.
Control characters (NUL, TAB, newline) cannot be a gene id at all: the metadata reader refuses them.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from chromoformer.cli import main
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.errors import MetadataError, SampleSheetError, UsageError
from chromoformer.files.names import MAX_COMPONENT, check_label, check_name, file_component, inside
from chromoformer.results.interpretation import interpret
from fault_inputs import tiny_data

HOSTILE = ["../../../x", "/etc/passwd", "a:b:pcre1", "g;touch PWNED", "$(touch PWNED)", "`touch PWNED`",
           "\"q'uote", "<script>alert(1)</script>", "ü-gène-名", "x" * 300, ".", "..", "-rf", "a b", "%2F.png",
           "#h?q=1&r", "a,b", "C:\\win"]
CONTROL = ["a\tb", "a\nb", "a\rb", "a\x00b", "a\x1bb", "a\u2028b"]


def test_file_component_is_safe_and_injective():
    parts = [file_component(n) for n in HOSTILE + CONTROL + ["", "plain_ID-1"]]
    assert len(set(parts)) == len(parts)  # two names never share a file
    for part in parts:
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", part) and part not in (".", "..")
        assert len(part.encode()) <= MAX_COMPONENT
    assert file_component("plain_ID-1") == "plain_ID-1"  # ordinary ids are kept as they are


def test_inside_refuses_paths_that_leave_their_folder(tmp_path):
    assert inside(tmp_path / "a" / "b.png", tmp_path)
    for bad in ("../x.png", "/etc/x.png", "a/../../x.png"):
        with pytest.raises(UsageError, match="outside its folder"):
            inside(tmp_path / bad, tmp_path)


@pytest.mark.parametrize("name", HOSTILE[:8] + CONTROL + ["", "x" * 65, ".hidden"])
def test_sheet_names_are_refused(name):
    with pytest.raises(SampleSheetError, match="is not a valid name"):
        check_name(name, "sample name", "samples.yaml", SampleSheetError)


@pytest.mark.parametrize("value", CONTROL)
def test_control_characters_are_refused_as_labels(value):
    with pytest.raises(MetadataError, match="control character"):
        check_label(value, "gene_id", "meta.csv:2", MetadataError)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A synthetic dataset whose genes carry the hostile names, a 1-epoch model, its interpretation."""
    root = tmp_path_factory.mktemp("hostile")
    meta, npy, config = tiny_data(root, n_genes=len(HOSTILE), seed=3)
    d = pd.read_csv(meta, dtype=str, keep_default_na=False)
    d["gene_id"] = HOSTILE
    d.to_csv(meta, index=False)
    run = root / "run"
    main(["train", "-c", str(config), "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(run), "--epochs", "1",
          "--num-workers", "0"])
    interp = root / "interp"
    before = _files_under(root)
    interpret(meta, npy, run / "best.pt", interp, genes=HOSTILE)  # the library: '-rf' is not an option here
    new = _files_under(root) - before
    return root, meta, npy, run, interp, new


def _files_under(root: Path) -> set[Path]:
    """Every file in the test session's folder (above ``root``: where '../' would lead)."""
    return {p for p in root.parent.rglob("*") if p.is_file()}


def test_interpret_writes_every_gene_inside_its_folder(hostile_run):
    root, _, _, _, interp, new = hostile_run
    outside = {p for p in new if interp not in p.parents}
    assert new and not outside, outside
    from chromoformer.files.layouts import InterpretationFiles

    files = InterpretationFiles(interp)
    assert all(files.plot("attribution", g).is_file() for g in HOSTILE)  # one PNG per gene, none shared
    assert len(list(interp.glob("attribution_*.png"))) == len(HOSTILE)
    assert not (root.parent / "x").exists() and not Path("/etc/passwd_attention.png").exists()


def test_report_escapes_names_and_links_stay_inside(hostile_run):
    root, _, _, run, interp, _ = hostile_run
    evil = run / "figs" / '<img src=x onerror="alert(1)">.png'  # another figure in the run, named to attack
    evil.parent.mkdir(exist_ok=True)
    evil.write_bytes(b"\x89PNG\r\n")
    main(["report", str(run), "--interpretation", str(interp)])
    index = (run / "report" / "index.html").read_text()
    assert "<img src=x" not in index and html.escape(evil.name) in index
    assert "<script>alert(1)</script>" not in index and html.escape("<script>alert(1)</script>") in index
    pages = list((run / "report" / "genes").glob("*.html"))
    assert len(pages) == len(HOSTILE)
    for href in re.findall(r'(?:href|src)="([^"]+)"', index):
        target = (run / "report" / unquote(html.unescape(href))).resolve()
        assert run in target.parents and target.is_file(), href
    for page in pages:
        text = page.read_text()
        assert "<script>alert" not in text
        for src in re.findall(r'src="([^"]+)"', text):
            assert (page.parent / unquote(html.unescape(src))).is_file(), src


def test_track_files_keep_their_columns_with_hostile_names(hostile_run, tmp_path):
    root, meta, npy, run, interp, _ = hostile_run
    pred = tmp_path / "pred.csv"
    main(["predict", "-m", str(meta), "-d", str(npy), "-k", str(run / "best.pt"), "-o", str(pred)])
    assert pd.read_csv(pred, dtype={"gene_id": str}, keep_default_na=False).gene_id.tolist() == HOSTILE  # csv quoting
    sizes = tmp_path / "sizes.txt"
    sizes.write_text("".join(f"chr{c}\t300000000\n" for c in [*range(1, 23), "X", "Y"]))
    out = tmp_path / "tracks"
    main(["export", "-m", str(meta), "-o", str(out), "--predictions", str(pred),
          "--interpretation", str(interp), "--chrom-sizes", str(sizes)])
    bedpe = [ln.split("\t") for ln in (out / "pcre_links.bedpe").read_text().splitlines() if not ln.startswith("#")]
    inter = [ln.split("\t") for ln in (out / "pcre_links.interact").read_text().splitlines()[1:]]
    assert bedpe and {len(r) for r in bedpe} == {10} and {len(r) for r in inter} == {18}
    ids = set(HOSTILE)
    for r in inter:
        gene, pcre = r[3].rsplit(":", 1)
        assert gene in ids and r[16] == gene and r[11] == pcre and pcre.startswith("pcre")  # ':' in ids kept apart
    for r in bedpe:
        assert r[6].rsplit(":", 1)[0] in ids


def test_writers_refuse_a_field_separator_in_a_hand_made_gene(tmp_path):
    from chromoformer.data.metadata import Gene, Region
    from chromoformer.results.browser import link_table, write_links

    g = Gene("a\tb", "chr1", 1_000_000, "+", (Region("chr1", 1_100_000, 1_102_000),), (2.0,), 1, None, 1, 2, "x")
    with pytest.raises(UsageError, match="control character"):
        write_links(link_table([g]), tmp_path, "interaction")
    assert not list(tmp_path.iterdir())


def test_metadata_refuses_control_characters_in_gene_ids(tmp_path):
    meta, _ = write_synthetic_dataset(tmp_path / "data", n_genes=4, seed=1)
    for bad in CONTROL[:2]:
        d = pd.read_csv(meta, dtype=str, keep_default_na=False)
        d.loc[1, "gene_id"] = bad
        p = tmp_path / "m.csv"
        d.to_csv(p, index=False)
        from chromoformer.data import read_metadata

        with pytest.raises(MetadataError, match=r"m\.csv:3: gene_id .* control character"):
            read_metadata(p)
