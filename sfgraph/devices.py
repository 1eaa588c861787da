"""The compute device a ``device`` setting names: ``auto`` resolved to CUDA where there is one."""
from __future__ import annotations

import os

# what a CUDA driver leaves in the file system: Linux's NVIDIA driver, and WSL's GPU device
_CUDA_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/dxg")


def resolve_device(device: str) -> str:
    """``device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) with ``auto`` resolved: ``cuda``
    where torch finds it, else ``cpu``. Without a CUDA driver torch cannot find one, so it is
    not imported to ask: separating on the CPU runs without torch."""
    if device != "auto":
        return device
    if not any(os.path.exists(path) for path in _CUDA_DRIVER_PATHS):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
