"""The HTML report as a person sees it: every link and image resolves, per-gene pages exist for the
interpreted genes, and headless Chromium renders the pages with no broken image (skipped, with a
message, where Chromium is not installed: apt-get install chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pytest

from chromoformer.cli import main

CHROMIUM = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])


@pytest.fixture(scope="module")
def reported(synthetic, tmp_path_factory):
    meta, npy = synthetic
    d = tmp_path_factory.mktemp("report")
    run = d / "run"
    import yaml

    from chromoformer.config import load_config

    small = {**load_config().to_dict(), **{k: {"n_layers": 1, "n_heads": 2, "d_model": 16, "d_ff": 16}
                                           for k in ("embed", "pairwise_interaction", "regulation")}, "d_head": 8}
    (d / "small.yaml").write_text(yaml.safe_dump(small))
    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(run), "--epochs", "2",
          "--num-workers", "0", "-c", str(d / "small.yaml")])
    from chromoformer.data import read_metadata

    genes = [g.gene_id for g in read_metadata(meta) if g.pcres][:3]
    main(["interpret", "-m", str(meta), "-d", str(npy), "-k", str(run / "best.pt"), "-o", str(d / "interp"),
          "--genes", *genes])
    main(["report", str(run), "--interpretation", str(d / "interp")])
    return run / "report", genes


def test_every_link_and_image_resolves_and_genes_have_pages(reported):
    out, genes = reported
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 1 + len(genes)
    for page in pages:
        refs = _Refs()
        refs.feed(page.read_text())
        for src in refs.images:
            target = (page.parent / src).resolve()
            assert target.is_file(), f"{page.name}: broken image {src}"
            assert plt.imread(target).shape[0] > 50  # a real PNG
        for href in refs.links:
            assert (page.parent / href).resolve().exists(), f"{page.name}: broken link {href}"
    index = (out / "index.html").read_text()
    for g in genes:
        assert f'href="genes/{g}.html"' in index
        page = (out / "genes" / f"{g}.html").read_text()
        assert f'src="attention_{g}.png"' in page and f'src="attribution_{g}.png"' in page
        assert "In-silico perturbation" in page
    assert "reliability.png" in index and "training_curves.png" in index
    assert "<title>Chromoformer: run</title>" in index and "<h1>Chromoformer: run</h1>" in index  # the run's name once


def _chromium(*args: str) -> str:
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                       capture_output=True, text=True, timeout=120)
    return r.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_chromium_renders_the_pages_with_no_broken_image(reported, tmp_path):
    out, genes = reported
    for page in [out / "index.html", out / "genes" / f"{genes[0]}.html"]:
        checker = tmp_path / "check.html"
        checker.write_text(
            f'<html><body><iframe id="f" src="{page.as_uri()}"></iframe><pre id="out">pending</pre><script>'
            "document.getElementById('f').onload = function () {"
            " const imgs = Array.from(this.contentDocument.images);"
            " const bad = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));"
            " document.getElementById('out').textContent = JSON.stringify({images: imgs.length, broken: bad});"
            "};</script></body></html>")
        dom = _chromium("--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom",
                        checker.as_uri())
        m = re.search(r'<pre id="out">(.*?)</pre>', dom)
        assert m, dom[-500:]
        seen = json.loads(m.group(1).replace("&quot;", '"'))
        assert seen["images"] >= 2 and seen["broken"] == [], (page, seen)
        shot = out / f"screenshot_{page.stem}.png"  # kept with the report, for a person to look at
        _chromium(f"--screenshot={shot}", "--window-size=1100,1600", page.as_uri())
        img = plt.imread(shot)
        assert img.shape[:2] == (1600, 1100)
        ink = (img[..., :3].mean(axis=2) < 0.9).mean()
        assert 0.03 < ink < 0.9  # text and figures drawn, not a blank or an error page
        assert np.std(img[..., :3]) > 0.05
