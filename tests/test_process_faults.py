"""Faults of the process rather than of an input, each one line (never a traceback or a native abort): a hangup or
termination of the whole process group while loader workers run, an error raised inside a worker, an address-space
limit too small for the command, and a working directory deleted under the shell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chromoformer.data.synthetic import write_synthetic_dataset

CLI = [sys.executable, "-m", "chromoformer.cli"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A synthetic dataset and a 1-epoch checkpoint of the tests' tiny model."""
    import yaml

    from chromoformer.cli import main
    from chromoformer.config import load_config
    from fault_inputs import TINY

    root = tmp_path_factory.mktemp("process")
    meta, npy = write_synthetic_dataset(root / "data", n_genes=48, seed=2)
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({**load_config().to_dict(), **TINY}))
    main(["train", "-c", str(config), "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(root / "run"),
          "--epochs", "1", "--num-workers", "0"])
    return meta, npy, root / "run" / "best.pt"


def one_line(stderr: str, *parts: str) -> None:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("chromoformer: error:")]
    assert "Traceback" not in stderr and len(errors) == 1, stderr[-3000:]
    for p in parts:
        assert p in errors[0], errors[0]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("sig", [signal.SIGHUP, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_signal_to_the_process_group_is_one_line_with_workers_running(trained, tmp_path, sig):
    meta, npy, ckpt = trained
    out = tmp_path / "pred.csv"
    p = subprocess.Popen([*CLI, "predict", "-m", meta, "-d", npy, "-k", ckpt, "-o", out, "--num-workers", "2",
                          "--batch-size", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None and len(_children(p.pid)) < 1:
        time.sleep(0.05)  # until the loader's forkserver (and its workers) exist
    time.sleep(0.5)
    os.killpg(p.pid, sig)  # as a terminal hangup or `kill -- -PGID` does: every process of the group
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, (p.returncode, err[-2000:])
    one_line(err, f"stopped by {signal.Signals(sig).name}")
    assert not out.exists() and not list(tmp_path.glob(".pred.csv*"))


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 40000000000 bytes"),
    RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    ImportError("libscipy_openblas.so: failed to map segment from shared object"),  # ulimit -v at an import
])
def test_a_failed_allocation_is_one_line(error, capsys):
    """Where the address space or the GPU runs out depends on the machine (an import, a batch, the model): each
    form the failure takes is the same one line."""
    import argparse

    from chromoformer.cli import run_command

    def command(_args):
        raise error

    with pytest.raises(SystemExit) as e:
        run_command(argparse.ArgumentParser(), command, [])
    assert e.value.code == 2
    one_line(capsys.readouterr().err, "out of memory", "lower --batch-size")


def test_a_missing_package_is_not_called_memory(capsys):
    import argparse

    from chromoformer.cli import run_command

    def command(_args):
        raise ImportError("No module named 'nonexistent'")

    with pytest.raises(ImportError):
        run_command(argparse.ArgumentParser(), command, [])


def test_a_deleted_working_directory_is_one_line_before_torch_loads(trained, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = ("import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); sys.argv = sys.argv[:1] + sys.argv[2:]; "
              "from chromoformer.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", script, gone, "inspect", trained[2]], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    one_line(r.stderr, "working directory no longer exists")


def test_an_error_inside_a_loader_worker_is_the_main_processs_line(trained, tmp_path, capsys):
    """A region file that goes bad after the inputs were checked is read by a worker: the same line as without
    workers, not the worker's traceback."""
    import shutil

    meta, npy, ckpt = trained
    bad = tmp_path / "npy"
    shutil.copytree(npy, bad)
    from chromoformer.cli import main
    from chromoformer.data import read_metadata
    from chromoformer.data.sources import NpyDirSource, promoter_region

    last = read_metadata(meta)[-1]
    region, _ = promoter_region(NpyDirSource(bad), last, 40000)
    victim = NpyDirSource(bad).path(region)
    import numpy as np

    x = np.load(victim)
    x[0, 0] = np.nan  # finite-ness is checked when the values are read, in the worker
    np.save(victim, x)
    lines = []
    for workers in ("0", "2"):  # in this process: the workers are its children, as under the command
        with pytest.raises(SystemExit) as e:
            main(["predict", "-m", str(meta), "-d", str(bad), "-k", str(ckpt), "-o", str(tmp_path / f"p{workers}.csv"),
                  "--num-workers", workers, "--batch-size", "4"])
        err = capsys.readouterr().err
        assert e.value.code == 2, err[-2000:]
        one_line(err, victim.name, "NaN or infinite")
        lines.append([ln for ln in err.splitlines() if ln.startswith("chromoformer: error:")][0])
    assert lines[1].endswith(lines[0].split("chromoformer: error: ", 1)[1])
