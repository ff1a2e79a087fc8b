"""The README's "Python API" block runs as written, on the real demo genes."""

from __future__ import annotations

import os
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _api_block() -> str:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_api_example_runs(demo, tmp_path, capsys):
    code = _api_block().replace('"../shared/reference-demo"', repr(str(demo)))
    assert code != _api_block()  # the example names the demo folder
    cwd = os.getcwd()
    os.chdir(tmp_path)  # its runs/ folder goes here
    try:
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
    finally:
        os.chdir(cwd)
    pred, history = scope["pred"], scope["history"]
    assert len(pred) == 100 and pred.prediction.between(0, 1).all()
    assert len(history) == 1 and (tmp_path / "runs" / "api-demo" / "best.pt").is_file()
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith("True")  # the checkpoint's spec is the spec it was trained with
