"""The one owner of "safe name" rules: where a user's string becomes a name, a path or a field.

Three boundaries, three rules:

- **Names** that the workflow turns into folders, wildcards and command words (sample names,
  mark names) must match :data:`NAME` (letters, digits, ``. _ - +``; starts with a letter or
  digit; at most 64 characters). Anything else is refused: :func:`check_name`.
- **Labels** (gene ids, expression ids, column names) may be anything printable, but never hold
  a control character (TAB, newline, CR, NUL, ...), which would split a field or a row in every
  text format we write: :func:`check_label` refuses them at the point the label is read.
- **File names made from labels** (one PNG per gene) use :func:`file_component`: an injective,
  percent-style encoding to ``[A-Za-z0-9._-]`` that can never be ``.``, ``..``, hold a ``/`` or
  exceed :data:`MAX_COMPONENT` bytes; :func:`inside` then checks the resolved path stays in its
  folder.

Per-format escaping of labels that are valid but special in one format (HTML, the UCSC track
line's quotes, interact's fields) lives in the writer of that format and uses :func:`track_text`
or :mod:`html`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from chromoformer.errors import UsageError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
MAX_COMPONENT = 200  # bytes; every file system we meet allows 255
_KEEP = re.compile(r"[A-Za-z0-9_-]")


def check_name(value: object, what: str, where: str, error: type[Exception] = UsageError) -> str:
    """``value`` if it is a safe name (see :data:`NAME`), else ``error`` naming ``where`` and ``what``."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise error(f"{where}: {what} {value!r} is not a valid name: use letters, digits and . _ - + only, "
                    "starting with a letter or digit, at most 64 characters")
    return value


def check_label(value: str, what: str, where: str, error: type[Exception]) -> str:
    """``value`` unless it is empty or holds a control character (TAB, newline, NUL, ...)."""
    m = CONTROL.search(value)
    if m:
        raise error(f"{where}: {what} {value!r} holds the control character {m.group()!r} (U+{ord(m.group()):04X}), "
                    "which would break the tab-separated and track files written from it")
    return value


def file_component(label: str) -> str:
    """One safe, injective file-name component for ``label`` (a gene id).

    Letters, digits, ``_`` and ``-`` are kept; every other character becomes ``.XX`` per UTF-8
    byte (``.`` itself is ``.2E``), so two labels never share a component and no result is ``.``,
    ``..``, empty or holds ``/``. Results longer than :data:`MAX_COMPONENT` bytes are cut and end
    with a hash of the whole label.
    """
    out = "".join(ch if _KEEP.fullmatch(ch) else "".join(f".{b:02X}" for b in ch.encode()) for ch in label)
    out = out or ".00"  # the empty label
    if len(out) > MAX_COMPONENT:
        digest = hashlib.sha256(label.encode()).hexdigest()[:16]
        out = f"{out[:MAX_COMPONENT - 17]}~{digest}"
    return out


def inside(path: str | Path, folder: str | Path) -> Path:
    """``path`` if its resolved form lies inside ``folder`` (resolved), else :class:`UsageError`."""
    p, d = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    if d != p and d not in p.parents:
        raise UsageError(f"{path}: would be written outside its folder {folder}")
    return Path(path)


def track_text(value: str) -> str:
    """``value`` for a quoted UCSC track-line attribute: no quotes, backslashes or control characters."""
    return CONTROL.sub(" ", value).replace("\\", "/").replace('"', "'")
