"""The published checkpoints by name (chromoformer.engine.pretrained), against a loopback imitation of the
figshare API serving the shared scrambled checkpoint under its published name."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest
import torch

from chromoformer.cli import main as cli
from chromoformer.engine import pretrained
from chromoformer.errors import CheckpointError, FetchError, UsageError
from chromoformer.files.fetch import cached
from chromoformer.inference.verify import metric_checks
from loopback import figshare_entry, serve_article

CLF1 = "chromoformer-reproduction-E003-conf1-fold1.pt"


@pytest.fixture
def figshare(loopback, demo, monkeypatch):
    """The article lists E003's fold-1 classifier (the scrambled checkpoint), a fold-2 copy that only the
    403-answering ``download_url`` would serve (the API endpoint works), and names that are not checkpoints."""
    ck = (demo / "scrambled-clf-fold1.pt").read_bytes()
    files = [figshare_entry(loopback, 11, CLF1, ck),
             figshare_entry(loopback, 12, "E003/chromoformer-reproduction-E003-conf1-fold2.pt", ck),
             figshare_entry(loopback, 13, "../chromoformer-reproduction-E003-conf1-fold3.pt", ck),
             figshare_entry(loopback, 14, "E116/chromoformer-reproduction-E003-conf1-fold4.pt", ck),
             figshare_entry(loopback, 15, "README.txt", b"hello"),
             {"id": "16", "name": CLF1, "size": 1, "computed_md5": "x", "download_url": ""}]
    monkeypatch.setenv("CHROMOFORMER_FIGSHARE_API", serve_article(loopback, files))
    return ck


def test_catalogue_parses_published_names_and_skips_the_rest(figshare, caplog):
    got = [(p.eid, p.task, p.fold, p.file_id) for p in pretrained.catalogue()]
    assert got == [("E003", "clf", 1, 11), ("E003", "clf", 2, 12)]
    for skipped in ("../chromoformer", "E116/chromoformer", "README.txt", "ill-typed fields"):
        assert skipped in caplog.text


def test_fetch_then_predict_by_name_equals_the_file_itself(figshare, demo, tmp_path, loopback, capsys):
    """The issue's acceptance: pretrained fetch E003 --fold 1, then predict -k pretrained:E003/fold1."""
    cli(["pretrained", "fetch", "E003", "--fold", "1"])
    path = tmp_path / "cache" / "pretrained" / "E003" / CLF1
    assert capsys.readouterr().out.strip() == str(path) and path.read_bytes() == figshare and cached(path)
    assert ("/ndownloader/files/11", None) not in loopback.requests  # the API endpoint served it
    meta, signal = tmp_path / "meta.csv", str(demo / "demo_data")
    pd.read_csv(demo / "demo_meta.csv").head(16).to_csv(meta, index=False)  # 16 real genes: quick, and enough
    cli(["predict", "-m", str(meta), "-d", signal, "-k", "pretrained:E003/fold1", "-o", str(tmp_path / "byname.csv")])
    cli(["predict", "-m", str(meta), "-d", signal, "-k", str(demo / "scrambled-clf-fold1.pt"),
         "-o", str(tmp_path / "file.csv")])
    a, b = pd.read_csv(tmp_path / "byname.csv"), pd.read_csv(tmp_path / "file.csv")
    assert len(a) == 16 and a.equals(b)
    n = len(loopback.requests)
    cli(["inspect", "pretrained:E003/fold1"])  # every command that takes a checkpoint takes the name
    assert "ChromoformerClassifier" in capsys.readouterr().out and len(loopback.requests) == n  # from the cache


def test_the_ensemble_reference_fetches_every_fold_and_one_checkpoint_commands_want_one(figshare, capsys):
    paths = pretrained.resolve_checkpoints(["pretrained:E003", "x.pt"])
    assert [p.name for p in paths] == [CLF1, CLF1.replace("fold1", "fold2"), "x.pt"]
    with pytest.raises(SystemExit) as e:
        cli(["inspect", "pretrained:E003"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "one checkpoint is taken, got 2" in err and "add /foldK" in err
    with pytest.raises(SystemExit) as e:
        cli(["interpret", "-m", "m.csv", "-d", "d", "-k", "pretrained:E003", "-o", "i"])  # a one-checkpoint option
    assert e.value.code == 2 and "names 2 checkpoints and this command takes one: add /foldK" in capsys.readouterr().err
    for bad, said in (("pretrained:E3", "a published checkpoint is named pretrained:EID"),
                      ("pretrained:E003/reg", "no published reg"),
                      ("pretrained:E003/fold4", "no published clf checkpoint for E003 fold 4")):
        with pytest.raises(UsageError, match=said):
            pretrained.resolve_checkpoints([bad])
    models = pretrained.load_pretrained("E003", fold=1)
    assert len(models) == 1 and models[0].task == "clf"


def test_list_and_table(figshare, demo, tmp_path, capsys):
    cli(["pretrained", "list"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["eid", "task", "fold", "size", "md5", "cached", "archive"]
    assert "False" in out[1] and len(out) == 3
    with pytest.raises(SystemExit):
        cli(["pretrained", "table"])  # nothing cached yet
    assert "no published checkpoint is cached" in capsys.readouterr().err
    cli(["pretrained", "fetch", "E003"])
    cli(["pretrained", "table", "-o", str(tmp_path / "t.tsv")])
    t = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert t.fold.astype(str).tolist() == ["1", "2", "pooled"] and (t.n[:2] > 0).all()
    checks = metric_checks(demo / "scrambled-clf-fold1.pt")
    want = next(c.recomputed for c in checks if c.check.startswith("last_val_loss"))
    assert t.loss[0] == pytest.approx(want, rel=1e-6)  # verify's recomputation of the same stored numbers
    auroc = next(c for c in metric_checks(demo / "scrambled-clf-fold1.pt") if "auroc" in c.check)
    assert t.auroc[0] == pytest.approx(auroc.recomputed, abs=1e-6) and t.stored[0] == pytest.approx(auroc.stored)
    assert t.n[2] == 2 * t.n[0]


def test_a_swapped_or_corrupt_file_is_refused_in_one_line(loopback, demo, tmp_path, monkeypatch):
    ck = (demo / "scrambled-clf-fold1.pt").read_bytes()
    corrupt = ck[:1000] + bytes(b ^ 0xFF for b in ck[1000:2000]) + ck[2000:]
    files = [figshare_entry(loopback, 21, "chromoformer-reg-reproduction-E003-conf1-fold1.pt", ck),  # a clf inside
             figshare_entry(loopback, 22, CLF1, corrupt)]  # its md5 is the corrupt bytes': only reading finds it
    monkeypatch.setenv("CHROMOFORMER_FIGSHARE_API", serve_article(loopback, files))
    with pytest.raises(CheckpointError, match="published as a reg checkpoint but it holds a clf model"):
        pretrained.resolve_checkpoints(["pretrained:E003/reg/fold1"])
    with pytest.raises(CheckpointError, match="the fetched file is not a usable checkpoint"):
        pretrained.resolve_checkpoints(["pretrained:E003/fold1"])
    leftovers = [p for p in (tmp_path / "cache" / "pretrained").rglob("*") if p.is_file()
                 and not p.name.startswith(".")]
    assert leftovers == []


def test_a_per_eid_archive_is_checked_and_extracted_safely(loopback, demo, tmp_path, monkeypatch):
    ck = (demo / "scrambled-clf-fold1.pt").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"E003/{CLF1}", ck)
        z.writestr("../../evil.pt", b"x")
        z.writestr("chromoformer-reproduction-E116-conf1-fold1.pt", b"other cell")
    files = [figshare_entry(loopback, 31, "chromoformer-E003.zip", buf.getvalue())]
    monkeypatch.setenv("CHROMOFORMER_FIGSHARE_API", serve_article(loopback, files))
    [path] = pretrained.resolve_checkpoints(["pretrained:E003/fold1"])
    assert path.read_bytes() == ck and path.parent.name == "E003"
    assert not list(tmp_path.rglob("evil.pt")) and not (tmp_path / "cache" / "pretrained" / "E116").exists()
    with pytest.raises(FetchError, match="holds no chromoformer-reproduction-E003-conf1-fold2.pt"):
        pretrained.resolve_checkpoints(["pretrained:E003/fold2"])


def test_a_corrupt_archive_is_one_line(loopback, tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(CLF1, __import__("random").Random(0).randbytes(100_000))
    data = bytearray(buf.getvalue())
    data[5000:5060] = b"\xff" * 60  # inside the member: its CRC (or its deflate stream) breaks
    files = [figshare_entry(loopback, 41, "E003.zip", bytes(data))]
    monkeypatch.setenv("CHROMOFORMER_FIGSHARE_API", serve_article(loopback, files))
    with pytest.raises(FetchError, match="a corrupt or unreadable archive"):
        pretrained.resolve_checkpoints(["pretrained:E003/fold1"])
    assert not (tmp_path / "cache" / "pretrained" / "E003" / CLF1).exists()


def test_offline_add_registers_a_hand_fetched_file(figshare, demo, tmp_path, monkeypatch, capsys):
    pretrained.catalogue()  # the listing is cached once online
    monkeypatch.setenv("CHROMOFORMER_OFFLINE", "1")
    with pytest.raises(FetchError, match=r"fetch .*/v2/file/download/11 \(md5 [0-9a-f]{32}\) by hand"):
        pretrained.resolve_checkpoints(["pretrained:E003/fold1"])
    bogus = tmp_path / "bogus.pt"
    torch.save({"net": {}}, bogus)
    with pytest.raises(CheckpointError, match="matches no file of figshare article 19424807 v4"):
        pretrained.add(bogus)
    cli(["pretrained", "add", str(demo / "scrambled-clf-fold1.pt")])
    assert capsys.readouterr().out.strip().endswith(f"E003/{CLF1}")
    assert pretrained.resolve_checkpoints(["pretrained:E003/fold1"])[0].read_bytes() == figshare
