"""Where training runs, and how: the same code on a laptop CPU and a GPU node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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


def cpu_count() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def select_device(choice: DeviceChoice = "auto", batch_size: int = 1024, cuda_batch_multiplier: int = 4,
                  cuda_available: bool | None = None, cpu_threads: int = 0) -> DeviceSettings:
    """`auto` takes CUDA when present; `cuda` insists on it; `cpu` uses `cpu_threads` (0: every core)."""
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"training device must be auto, cpu or cuda, not {choice!r}")
    if choice == "cuda" and not has_cuda:
        raise DeviceUnavailable("training device 'cuda' was asked for, but no CUDA GPU is available "
                                "(torch.cuda.is_available() is False); use 'auto' or 'cpu'")
    if choice == "cuda" or (choice == "auto" and has_cuda):
        return DeviceSettings(torch.device("cuda"), pin_memory=True, non_blocking=True, autocast_bf16=True,
                              batch_size=batch_size * cuda_batch_multiplier, threads=torch.get_num_threads())
    return DeviceSettings(torch.device("cpu"), pin_memory=False, non_blocking=False, autocast_bf16=False,
                          batch_size=batch_size, threads=cpu_threads or cpu_count())


@contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """At most `threads` (0: one per core) in PyTorch and in the native pools of scikit-learn and
    NumPy (OpenMP, BLAS) meanwhile. A pool's threads spin while they wait for each other: on a core
    another process holds, that wait is the whole time slice, so a fit with more threads than free
    cores runs many times slower than with one."""
    from threadpoolctl import threadpool_limits

    threads = threads or cpu_count()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
