"""A real single-node SLURM cluster for tests (docs/cluster/test-cluster.sh), and helpers to watch its jobs.

``start_cluster`` skips the test with one line when this is not root or a package is missing
(the cluster installs nothing; .ci/run installs Debian's slurm-wlm, slurmdbd, munge and
mariadb-server). ``stop_cluster`` ends every daemon the script started, by PID, and returns the
PIDs still alive afterwards (none, or the fixture fails).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cluster"
SCRIPT = DOCS / "test-cluster.sh"
PARTITION, ACCOUNT = "debug", "mylab"


@dataclass(frozen=True)
class Cluster:
    """A running test cluster: its folder and the environment its clients need."""

    root: Path
    env: dict[str, str]

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> str:
        r = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode:
            raise AssertionError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr[-2000:]}")
        return r.stdout

    def jobs(self, workdir: Path | None = None) -> list[dict[str, str]]:
        """sacct's allocation rows (id, name, comment, state, workdir), optionally for one working directory."""
        out = self.run("sacct", "-n", "-X", "-P", "-a", "-o", "JobID,JobName%100,Comment%200,State,WorkDir%400")
        rows = [dict(zip(("id", "name", "comment", "state", "workdir"), line.split("|"), strict=True))
                for line in out.splitlines() if line.strip()]
        if workdir is not None:
            here = os.path.realpath(workdir)
            rows = [r for r in rows if os.path.realpath(r["workdir"]) == here]
        return rows

    def queue(self) -> list[tuple[str, str, str]]:
        """squeue's (id, comment, state) of queued and running jobs."""
        out = self.run("squeue", "-h", "-o", "%i|%k|%T")
        return [tuple(line.split("|")) for line in out.splitlines() if line.strip()]  # type: ignore[misc]

    def finished(self, job: str, timeout: float = 600) -> str:
        """Wait for ``job`` to leave the queue (polled every 0.5 s: ``sbatch --wait`` polls slower) and
        return its final sacct state."""
        wait_until(lambda: job not in [j[0] for j in self.queue()], timeout, f"job {job} to end", every=0.5)
        final = ("COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT", "OUT_OF_MEMORY")
        rows = wait_until(lambda: [r for r in self.jobs() if r["id"] == job and r["state"].startswith(final)], 60,
                          f"job {job}'s final state in sacct", every=0.5)
        return rows[0]["state"]

    def pids(self) -> dict[int, str]:
        f = self.root / "pids"
        f = f if f.exists() else self.root / "pids.stopped"
        return {int(p): n for p, n in (line.split() for line in f.read_text().splitlines() if line.strip())}


def missing() -> str | None:
    """Why no test cluster can start here (one line), or None."""
    r = subprocess.run(["bash", str(SCRIPT), "check", "/tmp"], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip() or f"exit {r.returncode}" if r.returncode else None


def start_cluster(root: Path) -> Cluster:
    why = missing()
    if why:
        pytest.skip(why)
    if Path("/etc/slurm/slurm.conf").exists():
        pytest.skip("/etc/slurm/slurm.conf exists (a real cluster here?): no test cluster is started")
    r = subprocess.run(["bash", str(SCRIPT), "start", str(root)], capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise AssertionError(f"the test cluster did not start: {r.stdout[-2000:]} {r.stderr[-3000:]}")
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf"), "USER": os.environ.get("USER") or "root"}
    return Cluster(root, env)


def stop_cluster(cluster: Cluster) -> list[int]:
    """Stop the cluster; the PIDs it had started that are still alive (should be none)."""
    subprocess.run(["bash", str(SCRIPT), "stop", str(cluster.root)], capture_output=True, text=True, timeout=120)
    return [pid for pid in cluster.pids() if _running(pid)]


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent to reap it is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def wait_until(pred: Callable[[], object], timeout: float, what: str, every: float = 0.3):
    """Poll ``pred`` until it returns something true (returned) or fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def profile(root: Path) -> Path:
    """docs/cluster/slurm-profile.yaml verbatim but for partition and account, as a profile folder."""
    text = (DOCS / "slurm-profile.yaml").read_text()
    assert 'slurm_partition: "short"' in text and 'slurm_account: "mylab"' in text
    folder = root / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(text.replace('slurm_partition: "short"', f'slurm_partition: "{PARTITION}"')
                                        .replace('slurm_account: "mylab"', f'slurm_account: "{ACCOUNT}"'))
    return folder
