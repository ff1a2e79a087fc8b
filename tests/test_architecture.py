"""The package's structure, enforced: the tree is the architecture.

Layers, bottom to top (a module imports only its own layer or those below it):

    vocabulary (errors, config, spec, metrics, progress, yamlfile) < files < {model, data} < {preprocess, engine}
        < {training, inference} < results < diff < workflow < cli (and the ``python -m chromoformer.train`` shim)

plus: model/ imports only torch, math, config and errors; only cli/ parses argv, exits or prints; torch.load and
torch.save appear only in engine/checkpoint, and so do the checkpoint's own key names; output file names are
spelled only in files/layouts, in the Snakefile too; no import
circle; nothing calls our own commands through argv strings. Each rule's checker is also run on a planted
violation, so a rule that can no longer fail is caught too.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

import chromoformer

SRC = Path(chromoformer.__file__).parent

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("vocabulary", ("chromoformer", "chromoformer.errors", "chromoformer.config", "chromoformer.spec",
                    "chromoformer.metrics", "chromoformer.progress", "chromoformer.yamlfile")),
    ("files", ("chromoformer.files",)),
    ("model, data", ("chromoformer.model", "chromoformer.data")),
    ("preprocess, engine", ("chromoformer.preprocess", "chromoformer.engine")),
    ("training, inference", ("chromoformer.training", "chromoformer.inference")),
    ("results", ("chromoformer.results",)),
    ("diff", ("chromoformer.diff",)),
    ("workflow", ("chromoformer.workflow",)),
    ("cli", ("chromoformer.cli", "chromoformer.train")),
]
MODEL_MAY_IMPORT = {"torch", "math", "__future__", "typing", "collections", "dataclasses", "chromoformer.config",
                    "chromoformer.errors", "chromoformer.model"}
COMMAND_LINE = ("chromoformer.cli", "chromoformer.train")


def is_command_line(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in COMMAND_LINE)
# A file name with a stem and one of the suffixes our commands write (f-string pieces count: "{x}.png").
OUTPUT_NAME = re.compile(r"^[\w{}.:/-]*[\w}]\.(tsv|csv|pt|npz|npy|json|png|html|log|yaml|bedGraph|bedpe|bw|"
                         r"interact|safetensors|lock|done)$")
# Inputs, not outputs, whose names the code must spell: the packaged default config.
INPUT_NAMES = {("chromoformer.config", "configs/default.yaml"),
               ("chromoformer.config", "chromoformer/configs/default.yaml")}


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def sources() -> dict[str, ast.Module]:
    return {_module(p): ast.parse(p.read_text()) for p in sorted(SRC.rglob("*.py"))}


def imports(tree: ast.Module) -> set[str]:
    """Every module named by an import anywhere in the file (top level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """module -> chromoformer modules it imports."""
    return {m: {n for n in imports(t) if n in trees and n != m and not m.startswith(n + ".")}
            for m, t in trees.items()}


def layer_of(module: str) -> int:
    best = (-1, -1)  # (length of the longest matching prefix, layer)
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best[0]:
                best = (len(p), i)
    if best[1] < 0:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS in tests/test_architecture.py")
    return best[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
                  for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))


def model_imports(trees: dict[str, ast.Module]) -> list[str]:
    bad = []
    for m, t in trees.items():
        if m == "chromoformer.model" or m.startswith("chromoformer.model."):
            for n in imports(t):
                top = n.split(".")[0]
                if not (top in MODEL_MAY_IMPORT or any(n == a or n.startswith(a + ".") for a in MODEL_MAY_IMPORT)):
                    bad.append(f"{m} imports {n}")
    return sorted(set(bad))


def command_line_uses(trees: dict[str, ast.Module]) -> list[str]:
    """argparse, sys.argv, sys.exit or print outside cli/ (and the shim)."""
    bad = []
    for m, t in trees.items():
        if is_command_line(m):
            continue
        for node in ast.walk(t):
            what = None
            if isinstance(node, (ast.Import, ast.ImportFrom)) and "argparse" in imports(ast.Module([node], [])):
                what = "imports argparse"
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys" \
                    and node.attr in ("argv", "exit"):
                what = f"uses sys.{node.attr}"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                what = "prints"
            if what:
                bad.append(f"{m}:{node.lineno} {what}")
    return bad


def checkpoint_io(trees: dict[str, ast.Module]) -> list[str]:
    return [f"{m}:{n.lineno} torch.{n.attr}" for m, t in trees.items() if m != "chromoformer.engine.checkpoint"
            for n in ast.walk(t) if isinstance(n, ast.Attribute) and n.attr in ("load", "save")
            and isinstance(n.value, ast.Name) and n.value.id == "torch"]


def _strings(tree: ast.Module):
    pieces = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in pieces:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):  # f"{kind}_{gene}.png" -> "{}_{}.png"
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, text


def output_names(trees: dict[str, ast.Module]) -> list[str]:
    """File-name literals outside files/layouts (docstrings are prose, not names, and are skipped)."""
    bad = []
    for m, t in trees.items():
        if m == "chromoformer.files.layouts":
            continue
        docs = [n.body[0] for n in ast.walk(t) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef,
                ast.AsyncFunctionDef)) and n.body and isinstance(n.body[0], ast.Expr)]
        for d in docs:  # docstrings are prose
            d.value = ast.Constant(None)
        for line, s in _strings(t):
            if OUTPUT_NAME.match(s) and (m, s) not in INPUT_NAMES:
                bad.append(f"{m}:{line} {s!r}")
    return sorted(set(bad))


# The checkpoint's key names (engine.checkpoint.Key) that are not also everyday words of other files (a
# metrics column 'epoch', a store manifest's 'marks'): spelled anywhere else, a reader bypasses the owner.
SHARED_WORDS = {"epoch", "fold", "config", "binsizes", "task", "arch", "marks", "data", "spec", "history",
                "best_epoch"}


def checkpoint_only_keys() -> set[str]:
    from chromoformer.engine.checkpoint import Key

    return {v for k, v in vars(Key).items() if k.isupper()} - SHARED_WORDS


def checkpoint_keys(trees: dict[str, ast.Module]) -> list[str]:
    """Checkpoint key literals outside engine/checkpoint (docstrings are prose and are skipped)."""
    keys, bad = checkpoint_only_keys(), []
    for m, t in trees.items():
        if m == "chromoformer.engine.checkpoint":
            continue
        docs = {id(n.body[0].value) for n in ast.walk(t) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef,
                ast.AsyncFunctionDef)) and n.body and isinstance(n.body[0], ast.Expr)}
        bad += [f"{m}:{n.lineno} {n.value!r}" for n in ast.walk(t) if isinstance(n, ast.Constant)
                and isinstance(n.value, str) and n.value in keys and id(n) not in docs]
    return sorted(set(bad))


def snakefile_names(text: str, name: str = "Snakefile") -> list[str]:
    """File-name literals in a Snakefile (read as Python tokens: its rule syntax tokenizes, comments are skipped)."""
    bad = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.STRING:
            continue
        prefix = re.match(r"^[A-Za-z]*", tok.string).group(0).lower()
        body = tok.string[len(prefix):]
        value = ast.literal_eval(body) if "f" not in prefix else body.strip("\"'")
        if isinstance(value, str) and OUTPUT_NAME.match(value):
            bad.append(f"{name}:{tok.start[0]} {value!r}")
    return bad


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return sources()


def test_every_module_is_in_a_layer_and_imports_only_downward(trees):
    graph = import_graph(trees)
    assert "chromoformer.training.fit" in graph["chromoformer.training.compare"]  # the graph sees real edges
    assert upward_imports(graph) == []


def test_model_imports_only_torch_math_config_errors(trees):
    assert model_imports(trees) == []


def test_only_the_command_line_parses_argv_exits_or_prints(trees):
    assert command_line_uses(trees) == []


def test_checkpoints_are_read_and_written_in_one_module(trees):
    assert checkpoint_io(trees) == []


def test_output_file_names_are_spelled_only_in_layouts(trees):
    assert output_names(trees) == []


def test_checkpoint_keys_are_spelled_only_in_engine_checkpoint(trees):
    assert checkpoint_keys(trees) == []


def test_the_snakefile_takes_its_file_names_from_layouts():
    assert snakefile_names((SRC / "workflow" / "Snakefile").read_text()) == []


def test_import_graph_has_no_circle(trees):
    graph = import_graph(trees)
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_nothing_imports_the_command_line(trees):
    graph = import_graph(trees)
    assert [m for m, deps in graph.items() if not is_command_line(m) and any(map(is_command_line, deps))] == []


def test_no_module_calls_another_through_argv():
    """Library code calls functions with keywords; it never builds argument lists for our own parsers or
    runs our own command in a subprocess (the Snakefile, an adapter, is the one place commands are spelled)."""
    bad = re.compile(r"build_parser\(\)\.parse_args\(|\[\s*\"chromoformer\"\s*,|parse_args\(\s*\[")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert hits == []


def test_public_functions_of_many_parameters_take_options_by_keyword(trees):
    """In a public function of more than 4 parameters, every parameter with a default is keyword-only, so a call
    names its options (``predict(meta, signal, ckpts, batch_size=64)``) and cannot shift them by position."""
    bad = []
    for m, t in trees.items():
        if is_command_line(m) or m.startswith("chromoformer.model"):  # forward() keeps the original's calls
            continue
        for node in ast.walk(t):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                a = node.args
                positional = a.posonlyargs + a.args
                n = len(positional) + len(a.kwonlyargs)
                if positional and positional[0].arg in ("self", "cls"):
                    n -= 1
                if n > 4 and a.defaults:
                    optional = ", ".join(x.arg for x in positional[-len(a.defaults):])
                    bad.append(f"{m}:{node.lineno} {node.name}({optional} have defaults but can be passed by position)")
    assert bad == []


# The checkers fail on planted violations (a rule that cannot fail checks nothing).

def _planted(code: str, module: str = "chromoformer.data.planted") -> dict[str, ast.Module]:
    return {module: ast.parse(code), "chromoformer.cli.train": ast.parse(""), "chromoformer.data": ast.parse("")}


def test_planted_upward_import_is_caught():
    trees = _planted("from chromoformer.cli.train import main\n")
    assert upward_imports(import_graph(trees)) == [
        "chromoformer.data.planted (model, data) imports chromoformer.cli.train (cli)"]


def test_planted_model_io_is_caught():
    trees = _planted("import pandas\nfrom chromoformer.files.atomic import write_text\n", "chromoformer.model.planted")
    assert model_imports(trees) == ["chromoformer.model.planted imports chromoformer.files.atomic",
                                    "chromoformer.model.planted imports chromoformer.files.atomic.write_text",
                                    "chromoformer.model.planted imports pandas"]


def test_planted_argv_exit_and_print_are_caught():
    trees = _planted("import argparse\nimport sys\nprint(sys.argv)\nsys.exit(1)\n")
    assert sorted(command_line_uses(trees)) == ["chromoformer.data.planted:1 imports argparse",
                                                "chromoformer.data.planted:3 prints",
                                                "chromoformer.data.planted:3 uses sys.argv",
                                                "chromoformer.data.planted:4 uses sys.exit"]


def test_planted_torch_save_and_file_names_are_caught():
    trees = _planted('import torch\ntorch.save({}, f"{d}/model.pt")\nx = "metrics.tsv"\n')
    assert checkpoint_io(trees) == ["chromoformer.data.planted:2 torch.save"]
    assert output_names(trees) == ["chromoformer.data.planted:2 '{}/model.pt'",
                                   "chromoformer.data.planted:3 'metrics.tsv'"]


def test_planted_cycle_is_caught():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_library_api_is_importable_from_the_package():
    """Every name ``chromoformer.__all__`` lists (README's Python API) resolves to a function or class."""
    for name in chromoformer.__all__:
        obj = getattr(chromoformer, name)
        assert name == "__version__" or callable(obj), name


def test_planted_checkpoint_key_and_snakefile_name_are_caught():
    trees = _planted('def f(ck):\n    """Reads ck["val_score"] (prose)."""\n'
                     '    return ck["val_score"], ck.get("epoch")\n')
    assert checkpoint_keys(trees) == ["chromoformer.data.planted:3 'val_score'"]
    snake = ('rule x:\n    output:\n        "{sample}/predictions.csv",  # "not.tsv"\n    run:\n'
             '        f"{a}/best.pt"\n')
    assert snakefile_names(snake) == ["Snakefile:3 '{sample}/predictions.csv'", "Snakefile:5 '{a}/best.pt'"]
