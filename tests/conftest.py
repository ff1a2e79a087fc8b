"""Shared fixtures: the real demo data in ../shared (skipped when absent), small synthetic data."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CHROMOFORMER_SHARED", ROOT.parent / "shared"))
DEMO = SHARED / "reference-demo"
# Where .ci/run installs the original PyPI package (chromoformer==1.1.3), used only as an oracle.
ORIGINAL_SITE = Path(os.environ.get("CHROMOFORMER_ORIGINAL_SITE", ROOT / ".cache" / "original-1.1.3"))


def _loopback_only(address) -> None:
    """The guard: a test that connects anywhere but loopback (or a Unix socket) fails at once."""
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return
    host = address[0]
    try:
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise AssertionError(f"a test tried to connect to {address!r}: tests reach no address but loopback")


@pytest.fixture(scope="session", autouse=True)
def no_network_but_loopback():
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(self, address):
        _loopback_only(address)
        return connect(self, address)

    def guarded_ex(self, address):
        _loopback_only(address)
        return connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = guarded, guarded_ex
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex


@pytest.fixture
def loopback(tmp_path, monkeypatch):
    """A :class:`loopback.LoopbackServer` on 127.0.0.1, with the cache in ``tmp_path`` and quick retries."""
    from chromoformer.files import fetch
    from loopback import LoopbackServer

    monkeypatch.setenv("CHROMOFORMER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CHROMOFORMER_FETCH_TIMEOUT", "2")
    monkeypatch.delenv("CHROMOFORMER_OFFLINE", raising=False)
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.01)
    server = LoopbackServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def demo() -> Path:
    if not (DEMO / "demo_meta.csv").is_file():
        pytest.skip(f"real demo data not found at {DEMO} (set CHROMOFORMER_SHARED to the shared/ folder)")
    return DEMO


@pytest.fixture(scope="session")
def reference_state_dict() -> list[tuple[str, tuple[int, ...]]]:
    p = SHARED / "reference_state_dict.txt"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    out = []
    for line in p.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, shape = line.split()
            out.append((name, tuple(int(s) for s in shape.split(","))))
    return out


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> tuple[Path, Path]:
    from chromoformer.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), n_genes=24, seed=1)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node SLURM with accounting (docs/cluster/test-cluster.sh), for the whole session;
    every daemon it started is checked gone at the end."""
    from slurm_cluster import start_cluster, stop_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        alive = stop_cluster(cluster)
        assert not alive, f"test-cluster daemons still alive after stop: {alive}"


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each device a numeric test runs on: the CPU, and a CUDA GPU when one is present (as tangermeme's tests
    do); the same assertions hold on both, the references being computed on the CPU."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    """Slow tests (whole trainings, kill-and-resume loops) get 1800 s before pytest-timeout fails them."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(1800))
