"""The published checkpoints by name: figshare article 19424807 v4, listed, fetched, checked and cached.

The article is read from the figshare API (``$CHROMOFORMER_FIGSHARE_API``, default
``https://api.figshare.com/v2``): ``GET {base}/articles/19424807/versions/4`` lists its ``files`` (``id``,
``name``, ``size``, ``computed_md5``, ``download_url``); a file is downloaded from ``{base}/file/download/{id}``
first and its ``download_url`` second. Each published name says what it holds:
``chromoformer-reproduction-{EID}-conf1-fold{k}.pt`` (a classifier) and ``chromoformer-reg-reproduction-...``
(a regressor), flat, under an ``{EID}/`` prefix, or inside a per-EID ``.zip`` / ``.tar(.gz)`` archive whose
members are named the same way. A name is data, never a path: the cached file's name is rebuilt from what it
parsed to, and anything else is skipped with a warning. Every fetched checkpoint is read the way any other is
(``torch.load(weights_only=True)``, the one checkpoint -> spec rule, strict loading) before it is kept, and
must be of the task its name says.

A reference ``pretrained:EID[/reg][/foldK]`` names them wherever a checkpoint is accepted (all four folds of
the classifier by default): :func:`resolve_checkpoints`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chromoformer.engine.loading import LoadedModel, load_model
from chromoformer.errors import CheckpointError, ChromoformerError, FetchError, UsageError
from chromoformer.files.atomic import atomic_write
from chromoformer.files.fetch import Remote, cache_root, cached, fetch, file_digest, place
from chromoformer.files.layouts import CachedFile, published_checkpoint_name, published_listing_name

log = logging.getLogger(__name__)

ARTICLE, VERSION = 19424807, 4
DEFAULT_API = "https://api.figshare.com/v2"
PREFIX = "pretrained:"
CHECKPOINT_NAME = re.compile(r"chromoformer-(reg-)?reproduction-(E\d{3})-conf1-fold([1-4])\.pt")
ARCHIVE_NAME = re.compile(r"[A-Za-z0-9_.-]*?(E\d{3})[A-Za-z0-9_.-]*\.(zip|tar|tar\.gz|tgz)")
REFERENCE = re.compile(r"pretrained:(E\d{3})(/reg)?(?:/fold([1-4]))?")
MAX_LISTING = 16 << 20
MAX_CHECKPOINT = 2 << 30  # a published checkpoint is ~60 MB


@dataclass(frozen=True)
class Published:
    """One published checkpoint: what it is (``eid``, ``task``, ``fold``), its file name, and the figshare file
    that holds it (itself, or the ``archive`` it is a member of)."""

    eid: str
    task: str
    fold: int
    file_id: int
    size: int
    md5: str
    download_url: str
    archive: str | None = None

    @property
    def name(self) -> str:
        return published_checkpoint_name(self.eid, self.task, self.fold)

    @property
    def path(self) -> Path:
        return CachedFile.of(cache_root(), f"pretrained/{self.eid}", self.name).path


def api_base() -> str:
    return os.environ.get("CHROMOFORMER_FIGSHARE_API", DEFAULT_API).rstrip("/")


def _remote(file_id: int, name: str, size: int | None, md5: str | None, url: str, folder: str) -> Remote:
    urls = (f"{api_base()}/file/download/{file_id}",) + ((url,) if url.startswith(("http://", "https://")) else ())
    return Remote(name, urls, md5, size, folder)


def listing() -> list[dict]:
    """The article's ``files`` as the API gives them (cached: a published version never changes)."""
    url = f"{api_base()}/articles/{ARTICLE}/versions/{VERSION}"
    path = fetch(Remote(published_listing_name(ARTICLE, VERSION), (url,), folder="figshare"), max_bytes=MAX_LISTING,
                 check=_listing_check, progress=False)
    return json.loads(path.read_text())["files"]


def _listing_check(path: Path) -> None:
    try:
        files = json.loads(path.read_text()).get("files")
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise FetchError(f"{path}: the figshare listing is not the API's JSON ({e})") from None
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise FetchError(f"{path}: the figshare listing has no list of files")


def _fields(f: dict) -> tuple[int, str, int, str, str] | None:
    fid, name, size, md5, url = (f.get(k) for k in ("id", "name", "size", "computed_md5", "download_url"))
    ok = (type(fid) is int and fid >= 0 and isinstance(name, str) and type(size) is int and size >= 0
          and isinstance(md5, str) and re.fullmatch(r"[0-9a-f]{32}", md5) and isinstance(url, str))
    return (fid, name, size, md5, url) if ok else None


def catalogue() -> list[Published]:
    """Every published checkpoint the listing names (an archive's members once it is cached), sorted."""
    out = []
    for f in listing():
        fields = _fields(f)
        if fields is None:
            log.warning("figshare article %d: skipped a file entry with missing or ill-typed fields: %.200r",
                        ARTICLE, f)
            continue
        fid, name, size, md5, url = fields
        base = name.rsplit("/", 1)[-1]
        prefix = name[: -len(base) - 1] if "/" in name else None
        if m := CHECKPOINT_NAME.fullmatch(base):
            if prefix is not None and prefix != m.group(2):
                log.warning("figshare article %d: skipped %r (its folder is not its EID)", ARTICLE, name)
                continue
            out.append(Published(m.group(2), "reg" if m.group(1) else "clf", int(m.group(3)), fid, size, md5, url))
        elif prefix is None and (a := ARCHIVE_NAME.fullmatch(name)):
            out += [Published(a.group(1), task, fold, fid, size, md5, url, name)
                    for task in ("clf", "reg") for fold in (1, 2, 3, 4)]
        else:
            log.warning("figshare article %d: skipped %r (not a published checkpoint name)", ARTICLE, name)
    return sorted(set(out), key=lambda p: (p.eid, p.task, p.fold, p.archive or ""))


def checkpoint_check(task: str):
    """A ``fetch`` check: the file loads as any checkpoint does, and is a ``task`` model."""
    def check(path: Path) -> None:
        try:
            lm = load_model(path)
        except ChromoformerError as e:
            raise CheckpointError(f"the fetched file is not a usable checkpoint: {e}") from None
        if lm.task != task:
            raise CheckpointError(f"{path}: published as a {task} checkpoint but it holds a {lm.task} model "
                                  "(swapped or corrupt); nothing was kept")
    return check


def fetch_published(p: Published) -> Path:
    """``p`` in the cache (``pretrained/EID/NAME``), downloaded and checked once."""
    if p.archive is None:
        return fetch(_remote(p.file_id, p.name, p.size, p.md5, p.download_url, f"pretrained/{p.eid}"),
                     check=checkpoint_check(p.task), max_bytes=MAX_CHECKPOINT)
    if cached(p.path):
        return p.path
    archive = fetch(_remote(p.file_id, p.archive, p.size, p.md5, p.download_url, "figshare"))
    extract_members(archive, p.eid)
    if not cached(p.path):
        raise FetchError(f"{archive}: the archive {p.archive} holds no {p.name}")
    return p.path


def extract_members(archive: Path, eid: str) -> None:
    """Every member of ``archive`` named like an ``eid`` checkpoint, checked and placed in the cache; nothing is
    written under a member's own path, and links, folders and other names are skipped."""
    folder = cache_root() / "pretrained" / eid
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                members = [(i.filename, i.file_size, lambda i=i: z.open(i)) for i in z.infolist() if not i.is_dir()]
                _place_members(members, eid, folder, str(archive))
            return
        with tarfile.open(archive) as t:
            members = [(i.name, i.size, lambda i=i: t.extractfile(i)) for i in t.getmembers() if i.isfile()]
            _place_members(members, eid, folder, str(archive))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, NotImplementedError) as e:
        raise FetchError(f"{archive}: a corrupt or unreadable archive ({type(e).__name__}: {e})") from None


def _place_members(members: list, eid: str, folder: Path, where: str) -> None:
    for name, size, open_member in members:
        m = CHECKPOINT_NAME.fullmatch(name.rsplit("/", 1)[-1])
        if m is None or m.group(2) != eid or ".." in name.split("/") or name.startswith("/"):
            log.warning("%s: skipped member %r (not a checkpoint of %s)", where, name, eid)
            continue
        if size > MAX_CHECKPOINT:
            raise FetchError(f"{where}: member {name} declares {size:,} bytes, above {MAX_CHECKPOINT:,}")
        target = folder / m.group(0)
        if cached(target):
            continue
        part = CachedFile(target).part
        with open_member() as src:
            atomic_write(part, lambda f, src=src: shutil.copyfileobj(src, f, 1 << 20), size_hint=size)
        place(part, target, checkpoint_check("reg" if m.group(1) else "clf"))


def select(eid: str, task: str = "clf", fold: int | None = None) -> list[Published]:
    """The published checkpoints of ``eid`` / ``task`` (one ``fold`` or all); an unknown one is an error."""
    if task not in ("clf", "reg"):
        raise UsageError(f"task must be clf or reg, got {task!r}")
    found = [p for p in catalogue() if p.eid == eid and p.task == task and fold in (None, p.fold)]
    if not found:
        eids = sorted({p.eid for p in catalogue()})
        raise UsageError(f"no published {task} checkpoint for {eid}" + (f" fold {fold}" if fold else "")
                         + f" in figshare article {ARTICLE} v{VERSION} (it has {', '.join(eids) or 'none'})")
    return found


def parse_reference(ref: str) -> tuple[str, str, int | None]:
    """``pretrained:EID[/reg][/foldK]`` -> (eid, task, fold or None)."""
    m = REFERENCE.fullmatch(ref)
    if m is None:
        raise UsageError(f"{ref!r}: a published checkpoint is named pretrained:EID[/reg][/foldK], e.g. "
                         "pretrained:E003 (the 4-fold classifier) or pretrained:E116/reg/fold2")
    return m.group(1), "reg" if m.group(2) else "clf", int(m.group(3)) if m.group(3) else None


def resolve_checkpoints(refs: Sequence[str | Path]) -> list[Path]:
    """Checkpoint arguments with every ``pretrained:...`` reference replaced by its cached files."""
    out: list[Path] = []
    for r in refs:
        if isinstance(r, str) and r.startswith(PREFIX):
            out += [fetch_published(p) for p in select(*parse_reference(r))]
        else:
            out.append(Path(r))
    return out


def load_pretrained(eid: str, task: str = "clf", fold: int | None = None) -> list[LoadedModel]:
    """The published ``eid`` / ``task`` models (all four folds, or one ``fold``), fetched once and loaded."""
    return [load_model(fetch_published(p)) for p in select(eid, task, fold)]


def add(file: str | Path) -> Path:
    """Register a checkpoint fetched by hand: it must match a listed file's md5 (the listing must be cached or
    reachable), load as a checkpoint of its task, and is then copied into the cache."""
    file = Path(file)
    if not file.is_file():
        raise UsageError(f"{file}: file not found")
    md5 = file_digest(file, "md5")
    match = [p for p in catalogue() if p.md5 == md5]
    if not match:
        raise CheckpointError(f"{file}: its md5 {md5} matches no file of figshare article {ARTICLE} v{VERSION}")
    p = match[0]
    if p.archive is not None:
        archive = CachedFile.of(cache_root(), "figshare", p.archive)
        atomic_write(archive.part, lambda f: f.write(file.read_bytes()))
        place(archive.part, archive.path)
        extract_members(archive.path, p.eid)
        return archive.path
    part = CachedFile(p.path).part
    p.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(part, lambda f: f.write(file.read_bytes()))
    return place(part, p.path, checkpoint_check(p.task))
