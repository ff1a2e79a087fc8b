"""Advisory locks that die with their process (``flock``), for run directories and stores.

``with FileLock(path):`` creates ``path`` holding the owner's PID and host, takes an
exclusive ``flock`` on it and removes it on exit. A process killed with SIGKILL
releases the lock with its file descriptors, so a stale lock file never blocks the
next run: the next owner simply takes it over. Locking checks that the file it locked
is still the one at ``path`` (another owner may have removed it meanwhile) and retries.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from chromoformer.errors import RunError

log = logging.getLogger(__name__)


class FileLock:
    """Exclusive lock on ``path``; ``blocking=False`` raises :class:`RunError` if it is held.

    Parameters
    ----------
    path : the lock file
    what : what the lock protects, for messages (e.g. "run directory runs/fold1")
    blocking : wait for the holder to finish instead of failing at once
    """

    def __init__(self, path: str | Path, what: str, blocking: bool = False) -> None:
        self.path, self.what, self.blocking = Path(path), what, blocking
        self.fd: int | None = None

    def _holder(self) -> str:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "another process"
        return f"process {text}" if text else "another process"

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        waited = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not self.blocking:
                    holder = self._holder()
                    os.close(fd)
                    raise RunError(
                        f"{self.what} is in use by {holder} (lock {self.path}); wait for it to finish "
                        "or stop it first"
                    ) from None
                if not waited:
                    log.info("waiting for %s, which holds %s", self._holder(), self.what)
                    waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} on {socket.gethostname()}".encode())
                self.fd = fd
                return self
            os.close(fd)  # the previous holder removed the file after we opened it: retry
            time.sleep(0.01)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: see acquire()
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


@contextlib.contextmanager
def locked_folder(path: str | Path, what: str) -> Iterator[Path]:
    """Hold the lock ``path/.lock`` while a command writes the folder ``path``; a second writer is refused
    (:class:`RunError`). When the command fails, a folder it created is removed with what it wrote."""
    path = Path(path)
    created = not path.exists()
    try:
        with FileLock(path / ".lock", what):
            yield path
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise
