"""Write a .cool's contacts as a .hic (hictkpy) in a child process: hictkpy 1.4's logger thread
keeps a core busy for the rest of the process that imports it, so the test process never does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys, cooler, hictkpy
cool, out, assembly, *res = sys.argv[1:]
clr = cooler.Cooler(cool)
kw = {"assembly": assembly} if assembly else {}
w = hictkpy.hic.FileWriter(out, {c: int(n) for c, n in clr.chromsizes.items()}, [int(r) for r in res], **kw)
w.add_pixels(clr.pixels()[:].astype({"bin1_id": "int64", "bin2_id": "int64", "count": "int32"}))
w.finalize()
"""


def write_hic(cool: str | Path, out: str | Path, resolutions: list[int] | tuple[int, ...], assembly: str = "") -> Path:
    if importlib.util.find_spec("hictkpy") is None:  # looked up, not imported (see the module docstring)
        pytest.skip("hictkpy not installed")
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(cool), str(out), assembly, *map(str, resolutions)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return Path(out)
