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
