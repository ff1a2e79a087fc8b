"""The one fetcher of remote files: streamed, resumed, checked, cached once, placed atomically.

:func:`fetch` gets a :class:`Remote` (a name of ours, the URLs to try in order, the md5 and size the source
publishes) into the cache, ``$CHROMOFORMER_CACHE`` (default ``$XDG_CACHE_HOME/chromoformer``, else
``~/.cache/chromoformer``), and returns its path:

* one process downloads a file at a time: the others wait on its lock (``flock``) and then find it cached;
* the bytes go to ``NAME.part``; an interrupted transfer (a cut connection, a timeout, Ctrl-C, a kill) is
  resumed from there with an HTTP ``Range`` request (a server that ignores it sends the whole file again);
* timeouts (``CHROMOFORMER_FETCH_TIMEOUT`` seconds a read, default 60) and server errors (5xx) are retried
  ``RETRIES`` times with doubling back-off; 401/403/404/410 move on to the next URL (figshare's
  ``ndownloader`` links answer scripts with 403: the API's ``/file/download/{id}`` comes first);
* a download longer than the declared size or ``max_bytes``, a short one, a wrong md5, or a ``check`` that
  refuses the bytes leave nothing under the final name; the free space is checked before the transfer;
* a complete file is recorded with its sha256 in ``NAME.sha256``, written before the rename, and every
  later use checks the file against it;
* ``CHROMOFORMER_OFFLINE=1`` never opens a connection: a file not cached is an error that names the URL and
  checksum to fetch by hand.

Written on the standard library (``urllib``): pooch, the field's usual choice, neither resumes a partial
download nor locks a file against a second process, and both are what a 1-GB tagAlign on a cluster needs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from chromoformer.errors import ChromoformerError, DiskSpaceError, FetchError, is_no_space
from chromoformer.files.atomic import atomic_write, check_free_space
from chromoformer.files.layouts import CachedFile
from chromoformer.files.locking import FileLock
from chromoformer.files.names import check_name
from chromoformer.progress import tqdm

log = logging.getLogger(__name__)

RETRIES = 3  # tries per URL after the first, for timeouts, cut connections and 5xx answers
BACKOFF_S = 1.0  # the first retry waits this long, each next one twice as long
CHUNK = 1 << 20
MAX_BYTES = 64 << 30  # no file of the paper is near this; a declared size above it is refused
GIVE_UP = (401, 403, 404, 410)  # answers that another try of the same URL will not change


@dataclass(frozen=True)
class Remote:
    """One remote file: ``name`` (ours: a safe file name, never taken from the server), ``urls`` tried in
    order, the ``md5`` and ``size`` its source publishes (None: unknown), the cache ``folder`` it goes in."""

    name: str
    urls: tuple[str, ...]
    md5: str | None = None
    size: int | None = None
    folder: str = "downloads"

    def __post_init__(self) -> None:
        check_name(self.name, "cached file name", "fetch", FetchError)
        for part in Path(self.folder).parts:
            check_name(part, "cache folder", "fetch", FetchError)
        if not self.urls or not all(u.startswith(("http://", "https://")) for u in self.urls):
            raise FetchError(f"{self.name}: only http(s) URLs are fetched, got {list(self.urls)}")
        if self.md5 is not None and (len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5)):
            raise FetchError(f"{self.name}: md5 {self.md5!r} is not 32 lowercase hex digits")

    def describe(self) -> str:
        return f"{self.urls[0]}" + (f" (md5 {self.md5})" if self.md5 else "")


def cache_root() -> Path:
    """``$CHROMOFORMER_CACHE``, else ``$XDG_CACHE_HOME/chromoformer``, else ``~/.cache/chromoformer``."""
    if env := os.environ.get("CHROMOFORMER_CACHE"):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "chromoformer"


def offline() -> bool:
    return os.environ.get("CHROMOFORMER_OFFLINE", "").lower() in ("1", "true", "yes")


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def cached(path: Path) -> bool:
    """Whether ``path`` is a complete cached file: its ``.sha256`` record exists and matches it (a mismatch
    is logged and the file is fetched again)."""
    record = CachedFile(path).record
    if not (path.is_file() and record.is_file()):
        return False
    want = record.read_text().split()[0] if record.stat().st_size else ""
    if file_digest(path, "sha256") == want:
        return True
    log.warning("%s: its sha256 no longer matches the one recorded when it was fetched; fetching it again", path)
    return False


def place(src: Path, path: Path, check: Callable[[Path], None] | None = None) -> Path:
    """``check(src)`` (a :class:`ChromoformerError` removes ``src``), then record ``src``'s sha256 beside ``path``
    and rename ``src`` to ``path`` (same folder)."""
    if check is not None:
        try:
            check(src)
        except ChromoformerError:
            src.unlink(missing_ok=True)
            raise
    digest = file_digest(src, "sha256")
    atomic_write(CachedFile(path).record, lambda f: f.write(f"{digest}  {path.name}\n".encode()))
    os.replace(src, path)
    return path


def fetch(remote: Remote, *, cache: str | Path | None = None, check: Callable[[Path], None] | None = None,
          max_bytes: int = MAX_BYTES, progress: bool = True) -> Path:
    """``remote`` in the cache (downloaded once, checked on every use); its path. ``check(part)`` may refuse the
    downloaded bytes before they are placed (raise a :class:`ChromoformerError`). Raises :class:`FetchError`."""
    folder = Path(cache or cache_root()) / remote.folder
    path = folder / remote.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"{folder}: cannot create the cache folder ({e.strerror}); set CHROMOFORMER_CACHE") from None
    with FileLock(CachedFile(path).lock, f"download of {remote.name}", blocking=True):
        if cached(path):
            return path
        if offline():
            raise FetchError(f"{path}: not cached and CHROMOFORMER_OFFLINE is set; fetch {remote.describe()} by "
                             f"hand and register it (chromoformer pretrained add FILE, or place it at {path})")
        if remote.size is not None and remote.size > max_bytes:
            raise FetchError(f"{remote.urls[0]}: declares {remote.size:,} bytes, above the {max_bytes:,} a file may "
                             "have here")
        part = CachedFile(path).part
        download(remote, part, max_bytes, progress)
        verify(remote, part)
        return place(part, path, check)


def verify(remote: Remote, part: Path) -> None:
    """The downloaded bytes against the declared size and md5; a mismatch removes them."""
    got = part.stat().st_size
    problem = None
    if remote.size is not None and got != remote.size:
        problem = f"{got:,} bytes where the source declares {remote.size:,}"
    elif remote.md5 is not None and (md5 := file_digest(part, "md5")) != remote.md5:
        problem = f"md5 {md5} where the source publishes {remote.md5}"
    if problem:
        part.unlink(missing_ok=True)
        raise FetchError(f"{remote.urls[0]}: the download has {problem}; nothing was kept (try again, or report "
                         "a changed file to its source)")


def fetch_timeout() -> float:
    """``CHROMOFORMER_FETCH_TIMEOUT`` (seconds a read may wait; default 60), checked: 0.01 to 3600."""
    raw = os.environ.get("CHROMOFORMER_FETCH_TIMEOUT", "60")
    try:
        t = float(raw)
    except ValueError:
        t = math.nan
    if not 0.01 <= t <= 3600:
        raise FetchError(f"CHROMOFORMER_FETCH_TIMEOUT={raw!r}: must be a number of seconds from 0.01 to 3600")
    return t


def download(remote: Remote, part: Path, max_bytes: int, progress: bool) -> None:
    """Fill ``part`` from the first URL that serves it, resuming what it already holds."""
    timeout = fetch_timeout()
    reasons = []
    for url in remote.urls:
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                transfer(url, part, remote.size, max_bytes, timeout, progress)
                return
            except urllib.error.HTTPError as e:
                reason = f"HTTP {e.code} {e.reason}"
                if e.code == 416:  # the part is not a prefix the server can continue: start over
                    part.unlink(missing_ok=True)
                elif e.code in GIVE_UP or e.code < 500:
                    reasons.append(f"{url}: {reason}")
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError, HTTPException) as e:
                reason = str(getattr(e, "reason", None) or e) or type(e).__name__
            log.info("%s: %s (try %d of %d)", url, reason, attempt + 1, RETRIES + 1)
        else:
            reasons.append(f"{url}: {reason} after {RETRIES + 1} tries")
    have = f"; {part.stat().st_size:,} bytes kept in {part} to resume" if part.is_file() and part.stat().st_size else ""
    raise FetchError(f"{remote.name}: could not be downloaded ({'; '.join(reasons)}){have}")


def transfer(url: str, part: Path, declared: int | None, max_bytes: int, timeout: float, progress: bool) -> None:
    """One HTTP GET of ``url`` appended to ``part`` (``Range`` from its size); raises on a short transfer."""
    have = part.stat().st_size if part.is_file() else 0
    if declared is not None and have > declared:
        part.unlink()
        have = 0
    headers = {"User-Agent": "chromoformer", **({"Range": f"bytes={have}-"} if have else {})}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
        if have and r.status != 206:
            have = 0  # the server sends the whole file
        elif have and not r.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise HTTPException(f"the server resumed at {r.headers.get('Content-Range')!r}, not byte {have}")
        length = r.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else declared
        if total is not None and total > max_bytes:
            raise FetchError(f"{url}: sends {total:,} bytes, above the {max_bytes:,} a file may have here")
        if total is not None and declared is not None and total != declared:
            raise FetchError(f"{url}: sends {total:,} bytes where the source declares {declared:,}; nothing was kept")
        if total is not None:
            check_free_space(part.parent, total - have, f"the download of {url}")
        got = have
        try:
            with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                               desc=part.name[:-5], leave=False,
                                                               disable=None if progress else True) as bar:
                while block := r.read(CHUNK):
                    got += len(block)
                    if got > (declared if declared is not None else max_bytes):
                        part.unlink(missing_ok=True)
                        raise FetchError(f"{url}: sends more than the {declared or max_bytes:,} bytes declared")
                    f.write(block)
                    bar.update(len(block))
        except OSError as e:
            if is_no_space(e):
                raise DiskSpaceError(f"{part}: no space left on the device after {got:,} bytes of {url}; the part "
                                     "is kept: free space and run again to resume") from None
            raise
        if total is not None and got < total:
            raise ConnectionError(f"the transfer stopped after {got:,} of {total:,} bytes")
