"""GPU readings (``engine.gpu``) as text: the ``gpus`` table, the Monitor's GPU line and
the form's device options. A field NVML does not give is "n/a". No Textual here."""

from __future__ import annotations

from collections.abc import Sequence

from engine.gpu import GpuReading

GIB = 1024**3
NA = "n/a"


def gib(size: int | None) -> str:
    """Bytes as GiB with one decimal (``40.1``), or n/a."""
    return NA if size is None else f"{size / GIB:.1f}"


def memory_text(gpu: GpuReading) -> str:
    """``40.1/139.8 GiB`` (used of total), or n/a."""
    if gpu.memory_used is None or gpu.memory_total is None:
        return NA
    return f"{gib(gpu.memory_used)}/{gib(gpu.memory_total)} GiB"


def percent(value: int | None) -> str:
    """``87%``, or n/a."""
    return NA if value is None else f"{value}%"


def celsius(value: int | None) -> str:
    """``54°C``, or n/a."""
    return NA if value is None else f"{value}°C"


def watts(value: float | None) -> str:
    """``310 W`` (whole watts), or n/a."""
    return NA if value is None else f"{value:.0f} W"


def short_name(name: str) -> str:
    """The model without the maker: ``NVIDIA H200`` -> ``H200``."""
    for prefix in ("NVIDIA GeForce ", "NVIDIA "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def label(gpu: GpuReading) -> str:
    """``GPU0`` (NVML's index), with the ``cuda:N`` it is here when that differs."""
    if gpu.cuda is None:
        return f"GPU{gpu.index} (hidden)"
    return f"GPU{gpu.index}" if gpu.cuda == gpu.index else f"GPU{gpu.index} (cuda:{gpu.cuda})"


def table_rows(gpus: Sequence[GpuReading]) -> list[list[str]]:
    """``fmnist-tui gpus``'s table: a header, then one row per GPU."""
    rows = [["gpu", "cuda", "name", "util", "memory used/total", "free", "temp", "power", "procs"]]
    for gpu in gpus:
        power = watts(gpu.power)
        if gpu.power is not None and gpu.power_limit is not None:
            power = f"{gpu.power:.0f}/{gpu.power_limit:.0f} W"
        rows.append(
            [
                str(gpu.index),
                "-" if gpu.cuda is None else f"cuda:{gpu.cuda}",
                gpu.name,
                percent(gpu.utilization),
                memory_text(gpu),
                NA if gpu.memory_free is None else f"{gib(gpu.memory_free)} GiB",
                celsius(gpu.temperature),
                power,
                NA if gpu.processes is None else str(len(gpu.processes)),
            ]
        )
    return rows


def compact_item(gpu: GpuReading, *, short: bool = False) -> str:
    """One GPU on the Monitor's line: ``GPU0 H200  87%  40.1/139.8 GiB  54°C  310 W``;
    ``short`` (several GPUs side by side) keeps label, utilisation and memory."""
    parts = [f"{label(gpu)} {short_name(gpu.name)}", percent(gpu.utilization), memory_text(gpu)]
    if not short:
        parts += [celsius(gpu.temperature), watts(gpu.power)]
    return "  ".join(parts)


def expanded_line(gpu: GpuReading) -> str:
    """One GPU in full, with its processes: ``... 2 procs: 4242 39.1 GiB, 777 n/a``."""
    line = compact_item(gpu)
    if gpu.processes is None:
        return f"{line}  procs n/a"
    procs = ", ".join(
        f"{p.pid} {gib(p.used_bytes)}{'' if p.used_bytes is None else ' GiB'}"
        for p in gpu.processes
    )
    count = len(gpu.processes)
    return f"{line}  {count} proc{'' if count == 1 else 's'}" + (f": {procs}" if procs else "")


def device_option(gpu: GpuReading) -> str:
    """The form's device choice for a visible GPU: ``cuda:0  H200  120.3 GiB free``."""
    free = NA if gpu.memory_free is None else f"{gib(gpu.memory_free)} GiB"
    return f"cuda:{gpu.cuda}  {short_name(gpu.name)}  {free} free"


def run_first(gpus: Sequence[GpuReading], cuda: int | None) -> list[GpuReading]:
    """``gpus`` with the one that is ``cuda:N`` (the run's own) first, the others in order."""
    return sorted(gpus, key=lambda gpu: gpu.cuda != cuda or cuda is None)
