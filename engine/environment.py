"""Where and how a run trained: host, processor or GPU, driver and library versions, command.

Recorded with every session of a run (in its ``RunStarted`` event and ``status.json``),
so a result can be traced to the machine and software that produced it.
"""

from __future__ import annotations

import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version, from ``/proc/driver/nvidia/version`` (Linux)."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    for word in text.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# The command a person typed, when this process is not it (a detached run's child).
_command: list[str] | None = None


def launched_as(command: list[str]) -> None:
    """Record ``command`` (argv, e.g. ``fmnist-tui train --detach ...``) as how this
    process's runs were asked for, in place of its own ``sys.argv``."""
    global _command
    _command = list(command)


def describe_environment(device: torch.device) -> dict[str, Any]:
    """Host, device, processor or GPU name, driver, CUDA, torch, Python and fmnist-tui
    versions, and the command line (``sys.argv``), as plain JSON-ready values."""
    import torch

    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "device": str(device),
        "cpu": _cpu_name(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "fmnist_tui": _version("fmnist-tui"),
        "platform": platform.platform(),
        "command": list(_command if _command is not None else sys.argv),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info["gpu"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
        info["driver"] = _nvidia_driver()
    return info
