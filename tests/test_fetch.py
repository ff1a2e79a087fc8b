"""The one fetcher (chromoformer.files.fetch) against a loopback server that misbehaves on purpose: every
failure is one line naming the URL, nothing is left under a final name, and the cache holds each file once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chromoformer.errors import DiskSpaceError, FetchError
from chromoformer.files.fetch import Remote, cached, fetch
from loopback import md5
from test_fault_disk import fill, small_fs  # noqa: F401  (a tmpfs per test)

DATA = bytes(range(256)) * 4096  # 1 MiB


def remote(server, path="/f.bin", name="f.bin", data=DATA, good_md5=True, **how) -> Remote:
    url = server.add(path, data, **how)
    return Remote(name, (url,), md5(data) if good_md5 else "0" * 32, len(data))


def final_files(cache: Path) -> list[str]:
    """What is under a final name in the cache (no parts, records, locks)."""
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith((".part", ".sha256"))
                  and not p.name.startswith("."))


def test_guard_refuses_any_address_but_loopback():
    s = socket.socket()
    try:
        with pytest.raises(AssertionError, match="reach no address but loopback"):
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed, and never tried
    finally:
        s.close()


def test_fetch_places_checks_and_reuses(loopback, tmp_path):
    r = remote(loopback)
    p = fetch(r)
    assert p.read_bytes() == DATA and p == tmp_path / "cache" / "downloads" / "f.bin" and cached(p)
    assert (p.parent / "f.bin.sha256").read_text().split()[0] == __import__("hashlib").sha256(DATA).hexdigest()
    assert fetch(r) == p and len(loopback.requests) == 1  # the second use reads the cache
    p.write_bytes(b"changed")  # a changed cached file is noticed and fetched again
    assert fetch(r).read_bytes() == DATA and len(loopback.requests) == 2


def test_a_cut_transfer_is_resumed_with_a_range_request(loopback):
    p = fetch(remote(loopback, cut=True))
    assert p.read_bytes() == DATA
    assert [rng for _, rng in loopback.requests] == [None, f"bytes={len(DATA) // 2}-"]


def test_a_server_that_ignores_range_sends_the_whole_file_again(loopback):
    assert fetch(remote(loopback, cut=True, no_range=True)).read_bytes() == DATA


def test_wrong_md5_is_refused_and_nothing_kept(loopback, tmp_path):
    with pytest.raises(FetchError, match=r"f.bin: the download has md5 .* where the source publishes 0{32}; nothing"):
        fetch(remote(loopback, good_md5=False))
    assert final_files(tmp_path / "cache") == [] and not list((tmp_path / "cache").rglob("*.part"))


@pytest.mark.parametrize("how, said", [({"status": 404}, "HTTP 404"), ({"fail": 99}, "HTTP 500 .* after 4 tries"),
                                       ({"stall": 1.0}, "timed out after 4 tries")])
def test_failures_are_bounded_and_one_line(loopback, tmp_path, monkeypatch, how, said):
    monkeypatch.setenv("CHROMOFORMER_FETCH_TIMEOUT", "0.2")
    r = remote(loopback, **how)
    with pytest.raises(FetchError, match=f"could not be downloaded \\({r.urls[0]}: {said}") as e:
        fetch(r)
    assert "\n" not in str(e.value) and final_files(tmp_path / "cache") == []
    assert len(loopback.requests) == (1 if how.get("status") else 4)


def test_a_few_server_errors_are_retried(loopback):
    assert fetch(remote(loopback, fail=2)).read_bytes() == DATA
    assert len(loopback.requests) == 3


def test_a_redirect_is_followed_and_a_403_moves_to_the_next_url(loopback):
    loopback.add("/real", DATA)
    r = Remote("f.bin", (loopback.add("/forbidden", b"", status=403), loopback.add("/moved", b"", redirect="/real")),
               md5(DATA), len(DATA))
    assert fetch(r).read_bytes() == DATA
    assert [p for p, _ in loopback.requests] == ["/forbidden", "/moved", "/real"]


def test_a_declared_size_far_above_the_real_one_is_refused(loopback, tmp_path):
    url = loopback.add("/f.bin", DATA)
    with pytest.raises(FetchError, match=r"declares 10,000,000,000,000 bytes, above"):
        fetch(Remote("f.bin", (url,), md5(DATA), 10**13))
    assert loopback.requests == []  # refused before any connection
    for declared in (2 * len(DATA), 1000):  # the transfer's own length says otherwise: refused at its headers
        with pytest.raises(FetchError, match=rf"sends 1,048,576 bytes where the source declares {declared:,}"):
            fetch(Remote("f.bin", (url,), md5(DATA), declared))
    with pytest.raises(FetchError, match=r"sends 1,000 bytes where the source declares 2,000"):
        fetch(Remote("f.bin", (loopback.add("/short", DATA[:1000]),), None, 2000))
    # a body always shorter than its own Content-Length: resumed at byte 1,000, which the server cannot serve
    # (416): started over, the same again, until the tries are spent
    with pytest.raises(FetchError, match=r"/cut: HTTP 416 Requested Range Not Satisfiable after 4 tries\)$"):
        fetch(Remote("f.bin", (loopback.add("/cut", DATA[:1000], length=2000),), None, 2000))
    assert final_files(tmp_path / "cache") == []


def test_an_impossible_timeout_is_one_line(loopback, monkeypatch):
    for bad in ("abc", "0", "-1", "1e9", "nan"):
        monkeypatch.setenv("CHROMOFORMER_FETCH_TIMEOUT", bad)
        with pytest.raises(FetchError, match="CHROMOFORMER_FETCH_TIMEOUT=.*must be a number of seconds"):
            fetch(remote(loopback))


def test_names_and_folders_are_ours_never_a_path():
    for bad in ("../x", "a/b", "/etc/passwd", ""):
        with pytest.raises(FetchError, match="is not a valid name"):
            Remote(bad, ("http://127.0.0.1/x",))
    with pytest.raises(FetchError, match="only http"):
        Remote("x", ("file:///etc/passwd",))


def test_two_concurrent_fetches_download_once(loopback):
    r = remote(loopback, stall=0.5)
    out = []
    threads = [threading.Thread(target=lambda: out.append(fetch(r))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2 and out[0] == out[1] and out[0].read_bytes() == DATA
    assert len(loopback.requests) == 1


def test_offline_names_the_url_and_checksum(loopback, monkeypatch):
    monkeypatch.setenv("CHROMOFORMER_OFFLINE", "1")
    r = remote(loopback)
    with pytest.raises(FetchError, match=rf"not cached and CHROMOFORMER_OFFLINE is set; fetch {r.urls[0]} \(md5 "
                                         rf"{r.md5}\) by hand and register it \(chromoformer pretrained add FILE"):
        fetch(r)
    assert loopback.requests == []


def test_a_full_disk_is_one_line_and_the_part_resumes(loopback, small_fs, monkeypatch):  # noqa: F811
    fs = small_fs("2M")
    monkeypatch.setenv("CHROMOFORMER_CACHE", str(fs / "cache"))
    big = DATA * 3  # 3 MiB into 2 MiB
    with pytest.raises(DiskSpaceError, match=r"the download of .* needs 3.0 MB but only"):
        fetch(Remote("f.bin", (loopback.add("/f.bin", big),), md5(big), len(big)))
    r = Remote("g.bin", (loopback.add("/g.bin", big, no_length=True),), md5(big), None)  # no size: found writing
    with pytest.raises(DiskSpaceError, match=r"g.bin.part: no space left on the device after .* the part is kept"):
        fetch(r)
    assert final_files(fs / "cache") == []


def test_ctrl_c_mid_download_then_rerun_resumes(loopback, tmp_path):
    """A real SIGINT to a fetching process: exit 130 with one line, the part kept, the rerun sends Range."""
    url = loopback.add("/f.bin", DATA * 8, stall=30.0, stall_times=1)  # the first answer sends headers, then waits
    loopback.routes["/f.bin"].how["cut"] = False
    env = {**os.environ, "CHROMOFORMER_CACHE": str(tmp_path / "cache")}
    code = (f"from chromoformer.files.fetch import Remote, fetch; from chromoformer.cli import run_command; "
            f"import argparse; p = argparse.ArgumentParser(); "
            f"run_command(p, lambda a: fetch(Remote('f.bin', ('{url}',), '{md5(DATA * 8)}', {len(DATA) * 8})), [])")
    part = tmp_path / "cache" / "downloads" / "f.bin.part"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if part.exists():
                break
            threading.Event().wait(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "chromoformer: error: interrupted"
    assert part.exists() and not (tmp_path / "cache" / "downloads" / "f.bin").exists()
    loopback.routes["/f.bin"].how.pop("stall")
    part.write_bytes((DATA * 8)[:1000])  # as if the first 1000 bytes had arrived before the interrupt
    assert fetch(Remote("f.bin", (url,), md5(DATA * 8), len(DATA) * 8)).read_bytes() == DATA * 8
    assert loopback.requests[-1][1] == "bytes=1000-"
