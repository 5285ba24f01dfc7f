"""Choosing the device to train on: ``auto`` picks cuda, then mps, then cpu."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import DeviceError
from engine.fields import DEVICE_PATTERN, shown

if TYPE_CHECKING:
    import torch


def available_devices() -> list[str]:
    """Every device this machine can train on, e.g. ``["cuda:0", "cpu"]``."""
    import torch

    found = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def select_device(spec: str = "auto") -> torch.device:
    """Resolve ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N`` to a present device.

    Case and surrounding spaces are ignored. Raises ``DeviceError`` for another
    spelling or a device this machine does not have.
    """
    import torch

    spec = spec.strip().lower()
    if not DEVICE_PATTERN.match(spec):
        raise DeviceError(
            f"unknown device {shown(spec)}: use auto, cpu, mps, cuda or cuda:N "
            f"(available here: {', '.join(available_devices())})"
        )
    available = available_devices()
    if spec == "auto":
        return torch.device(available[0] if available[0] != "cuda:0" else "cuda")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if "mps" not in available:
            raise DeviceError(f"mps is not available here; available: {', '.join(available)}")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{spec} is not available here (no CUDA GPU); available: {', '.join(available)}"
        )
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if index >= torch.cuda.device_count():
        raise DeviceError(f"{spec} does not exist; available: {', '.join(available)}")
    return torch.device(spec)


def describe_device(device: torch.device) -> str:
    """A short human name for a device, e.g. ``cuda:0 (NVIDIA H100)`` or ``cpu (2 threads)``."""
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def memory_in_use(device: torch.device) -> int:
    """Bytes in use on ``device``: allocated tensors on CUDA, resident memory elsewhere."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.current_allocated_memory())
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def training_device(spec: str, precision: str) -> torch.device:
    """The device to train on for a config's ``device`` and ``precision``.

    Raises ``DeviceError`` for an absent device, or fp16 anywhere but CUDA.
    """
    device = select_device(spec)
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(
            f"precision fp16 needs a cuda device, but training would run on {device}; "
            "use bf16 or fp32"
        )
    return device
