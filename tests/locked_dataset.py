"""A dataset whose items need a module-level lock: a stand-in for any lock a thread of the
training process may hold when loader workers start (imported by the workers, so a module)."""

from __future__ import annotations

import threading

import torch

LOCK = threading.Lock()


class LockedDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> torch.Tensor:
        with LOCK:
            return torch.tensor([float(i)])


class SlowDataset(torch.utils.data.Dataset):
    """Items that take 0.2 s each; every worker that serves one records its pid in ``pids``."""

    def __init__(self, pids: str) -> None:
        self.pids = pids

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, i: int) -> torch.Tensor:
        import os
        import time

        with open(self.pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.2)
        return torch.tensor([float(i)])
