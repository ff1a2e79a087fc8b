"""A full disk: a small tmpfs is mounted for each test (skipped where mounting is not allowed).

Every command must fail with one line naming the path and the space, exit 2, never SIGBUS
or a traceback, and leave nothing on the full file system: no partial output, no
temporary file, no lock.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chromoformer.cli import main
from fault_inputs import tiny_data


@pytest.fixture
def small_fs(tmp_path):
    """Mount a tmpfs of the requested size; yields a function size -> mount point."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        d = tmp_path / f"fs{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", str(d)], check=False)


def fill(fs: Path) -> None:
    """Fill ``fs`` to the last byte."""
    import os

    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk")
    meta, npy, cfg = tiny_data(root, n_genes=8, seed=2)
    main(["train", "-c", str(cfg), "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(root / "run"),
          "--epochs", "1", "--num-workers", "0"])
    return meta, npy, cfg, root / "run" / "last.pt"


def fails_cleanly(capsys, argv, fs: Path, *expect: str) -> str:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    err = capsys.readouterr().err.replace("\r", "\n")
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert e.value.code == 2 and "Traceback" not in err
    assert len(errors) == 1 and errors[0].startswith("chromoformer: error: "), err[-1500:]
    for part in expect:
        assert part in errors[0], errors[0]
    assert sorted(p.name for p in fs.rglob("*")) in ([], ["filler"]), sorted(fs.rglob("*"))
    return errors[0]


def test_build_store_needs_more_than_free(capsys, small_fs, data):
    fs = small_fs("64k")
    fails_cleanly(capsys, ["build-store", "-d", data[1], "-o", fs / "store"], fs, str(fs / "store"), "needs",
                  "free")


def test_store_preallocation_fails_cleanly_not_sigbus(capsys, small_fs, data, monkeypatch):
    """Past the up-front check (disabled here), sums.npy is preallocated: ENOSPC, never SIGBUS."""
    monkeypatch.setattr("chromoformer.data.store_writer.check_free_space", lambda *a: None)
    fs = small_fs("64k")
    fails_cleanly(capsys, ["build-store", "-d", data[1], "-o", fs / "store"], fs, str(fs / "store"),
                  "no space left")


def test_train_checks_checkpoint_space_before_training(capsys, small_fs, data):
    fs = small_fs("256k")
    meta, npy, cfg, _ = data
    fails_cleanly(capsys, ["train", "-c", cfg, "-m", meta, "-d", npy, "--fold", "1", "-o", fs / "run",
                           "--epochs", "1", "--num-workers", "0", "--no-store"], fs, "checkpoints", "needs")


def test_checkpoint_write_hits_full_disk(capsys, small_fs, data, monkeypatch):
    """The disk fills while a checkpoint is written (torch reports it as a bare RuntimeError)."""
    monkeypatch.setattr("chromoformer.training.run_directory.check_free_space", lambda *a: None)
    monkeypatch.setattr("chromoformer.files.atomic.check_free_space", lambda *a: None)
    fs = small_fs("96k")
    meta, npy, cfg, _ = data
    fails_cleanly(capsys, ["train", "-c", cfg, "-m", meta, "-d", npy, "--fold", "1", "-o", fs / "run",
                           "--epochs", "1", "--num-workers", "0", "--no-store"], fs, "no space left")


def test_predict_output_on_full_disk(capsys, small_fs, data):
    fs = small_fs("64k")
    fill(fs)
    meta, npy, _, ckpt = data
    fails_cleanly(capsys, ["predict", "-m", meta, "-d", npy, "-k", ckpt, "-o", fs / "pred.csv"], fs,
                  str(fs / "pred.csv"), "no space left")


def test_evaluate_output_on_full_disk(capsys, small_fs, data):
    fs = small_fs("64k")
    run = data[3].parent
    fill(fs)
    fails_cleanly(capsys, ["evaluate", "--runs", run / "val_predictions.csv", "--out", fs / "eval"], fs,
                  "no space left")


def test_signals_store_on_full_disk(capsys, small_fs, data, tmp_path):
    fs = small_fs("64k")
    reads = tmp_path / "reads.bed"
    reads.write_text("chr1\t1000\t1100\n")
    fails_cleanly(capsys, ["preprocess", "signals", "--meta", data[0], "--signal", f"H3K4me3={reads}", "--out",
                           fs / "store"], fs, str(fs / "store"), "needs")
