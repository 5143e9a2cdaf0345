"""Where training runs, and how: the same code on a laptop CPU and a GPU node."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]


class DeviceUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class DeviceSettings:
    device: torch.device
    pin_memory: bool  # page-locked host memory, so copies to the GPU can overlap compute
    non_blocking: bool
    autocast_bf16: bool
    batch_size: int
    threads: int

    @property
    def name(self) -> str:
        return str(self.device)


def select_device(choice: DeviceChoice = "auto", batch_size: int = 1024, cuda_batch_multiplier: int = 4,
                  cuda_available: bool | None = None) -> DeviceSettings:
    """`auto` takes CUDA when present; `cuda` insists on it; `cpu` uses every core."""
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"training device must be auto, cpu or cuda, not {choice!r}")
    if choice == "cuda" and not has_cuda:
        raise DeviceUnavailable("training device 'cuda' was asked for, but no CUDA GPU is available "
                                "(torch.cuda.is_available() is False); use 'auto' or 'cpu'")
    if choice == "cuda" or (choice == "auto" and has_cuda):
        return DeviceSettings(torch.device("cuda"), pin_memory=True, non_blocking=True, autocast_bf16=True,
                              batch_size=batch_size * cuda_batch_multiplier, threads=torch.get_num_threads())
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return DeviceSettings(torch.device("cpu"), pin_memory=False, non_blocking=False, autocast_bf16=False,
                          batch_size=batch_size, threads=threads)
