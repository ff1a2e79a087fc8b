"""Strict YAML reading for every YAML file a command reads (configs, sample sheets).

PyYAML's ``safe_load`` keeps the last of two equal keys (a second ``lr: 100`` silently wins)
and expands aliases without limit (a "billion laughs" file of a few hundred bytes becomes
billions of values when walked). :func:`load_yaml` refuses both, and files over
:data:`MAX_BYTES`, with one line naming the file and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 16 * 2**20  # a config or sample sheet is a few kB; 16 MB is a sheet of ~100k samples
MAX_VALUES = 1_000_000  # values after alias expansion


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base' (merged keys may be overridden)
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}",
                                                        key_node.start_mark) from None
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(obj: Any, budget: int) -> int:
    """Number of values in ``obj`` with shared (aliased) parts counted each time, stopping past ``budget``."""
    count, stack = 0, [obj]
    while stack:
        x = stack.pop()
        count += 1
        if count > budget:
            break
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return count


def load_yaml(text: str, source: str | Path, error: type[Exception]) -> Any:
    """Parse ``text`` (read from ``source``) strictly; every problem is ``error`` naming ``source``."""
    if len(text) > MAX_BYTES:
        raise error(f"{source}: {len(text) / 2**20:.0f} MB is too large for a YAML config (limit "
                    f"{MAX_BYTES // 2**20} MB)")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise error(f"{source}: invalid YAML: {' '.join(str(e).split())[:300]}") from None
    except RecursionError:
        raise error(f"{source}: invalid YAML: nested too deeply") from None
    if _expanded_size(data, MAX_VALUES) > MAX_VALUES:
        raise error(f"{source}: invalid YAML: aliases expand to more than {MAX_VALUES:,} values (a 'billion laughs' "
                    "file?)")
    return data


def read_yaml(path: str | Path, error: type[Exception], what: str) -> Any:
    """Read and parse the YAML file ``path`` (a ``what``) strictly."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise error(f"{p}: {p.stat().st_size / 2**20:.0f} MB is too large for a {what} (limit "
                        f"{MAX_BYTES // 2**20} MB)")
        text = p.read_text()
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{p}: is a directory, expected a {what}") from None
    except UnicodeDecodeError:
        raise error(f"{p}: not a text (YAML) file") from None
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({e.strerror or e})") from None
    return load_yaml(text, p, error)
