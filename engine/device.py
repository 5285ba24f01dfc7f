"""Choosing the device to train on: ``auto`` picks cuda (the GPU with the most free
memory), then mps, then cpu."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from engine.errors import DeviceError
from engine.fields import DEVICE_PATTERN, shown

if TYPE_CHECKING:
    import torch

    from engine.gpu import GpuTelemetry


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
        if available[0] == "cuda:0":
            return torch.device(auto_cuda(torch.cuda.device_count()))
        return torch.device(available[0])
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


def auto_cuda(device_count: int, telemetry: GpuTelemetry | None = None) -> str:
    """The CUDA device ``auto`` means among ``device_count`` visible GPUs: ``cuda:N`` for
    the one with the most free memory (``telemetry``'s NVML figures, a fresh
    ``GpuTelemetry`` when None; ``engine.gpu.most_free_cuda``), or ``cuda`` (the current
    device, cuda:0) where NVML is absent, reports no free memory or names no such index."""
    from engine.gpu import GpuTelemetry, most_free_cuda

    own = telemetry is None
    source = GpuTelemetry() if telemetry is None else telemetry
    try:
        index = most_free_cuda(source.read().gpus)
    finally:
        if own:
            source.close()
    return "cuda" if index is None or index >= device_count else f"cuda:{index}"


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

    Raises ``DeviceError`` for an absent device, fp16 anywhere but CUDA, or bf16 on a GPU
    without it (``precision_problem``); ``auto`` is always possible.
    """
    device = select_device(spec)
    problem = precision_problem(precision, device)
    if problem:
        raise DeviceError(problem)
    return device


# The bf16 speed-up over fp32 (matmul at an MLP's shapes) below which auto keeps fp32 on a
# CPU that reports native bf16: an AVX-512 BF16 CPU without AMX may still run bf16 slower
# (measured 0.57x on an Intel Xeon without AMX, TECH-NOTES 2026-12-01).
BF16_MIN_SPEEDUP = 1.25
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def choose_precision(
    device_type: str,
    *,
    cpu_capabilities: dict[str, object] | None = None,
    cuda_bf16: bool = False,
    bf16_speedup: float | None = None,
) -> tuple[str, str]:
    """What ``precision = "auto"`` means on a device: ``(precision, reason)``.

    - ``cuda``: ``"bf16"`` when ``cuda_bf16`` (``torch.cuda.is_bf16_supported(
      including_emulation=False)``), else ``"fp32"``;
    - ``cpu``: ``"bf16"`` when ``cpu_capabilities`` (``torch.cpu.get_capabilities()``,
      None where torch lacks it) reports ``avx512_bf16`` or ``amx_bf16`` and, where
      measured, ``bf16_speedup`` (bf16 matmul rate over fp32's) is at least
      ``BF16_MIN_SPEEDUP``; ``"fp32"`` otherwise (an AVX-512 or AVX2 CPU without these
      flags only emulates bf16, slowly);
    - any other device (mps): ``"fp32"``.

    ``reason`` says why, in a few words, for the run's log.
    """
    if device_type == "cuda":
        if cuda_bf16:
            return "bf16", "this GPU computes bf16 natively"
        return "fp32", "this GPU has no native bf16"
    if device_type != "cpu":
        return "fp32", f"bf16 autocast is not used on {device_type}"
    if cpu_capabilities is None:
        return "fp32", "this torch cannot tell whether the CPU computes bf16 natively"
    flags = [flag for flag in CPU_BF16_FLAGS if cpu_capabilities.get(flag)]
    if not flags:
        return "fp32", "this CPU has no native bf16 (no avx512_bf16 or amx_bf16)"
    if bf16_speedup is not None and bf16_speedup < BF16_MIN_SPEEDUP:
        return "fp32", (
            f"this CPU has {'/'.join(flags)} but computes bf16 only {bf16_speedup:.2f}x "
            f"as fast as fp32 (bf16 needs {BF16_MIN_SPEEDUP}x)"
        )
    speed = f", bf16 {bf16_speedup:.1f}x fp32" if bf16_speedup is not None else ""
    return "bf16", f"this CPU computes bf16 natively ({'/'.join(flags)}{speed})"


def bf16_matmul_speedup(repeats: int = 5) -> float:
    """The CPU's bf16 matmul rate over its fp32 rate at an MLP's shapes (a 256 x 784 batch
    times 784 x 512 weights, 256 x 512 times 512 x 512), best of ``repeats`` each; takes
    about 0.1 s where bf16 is native. Measured on the calling thread's torch threads."""
    import time

    import torch

    def best(dtype: torch.dtype) -> float:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(256, 784, generator=gen).to(dtype)
        w1 = torch.randn(784, 512, generator=gen).to(dtype)
        w2 = torch.randn(512, 512, generator=gen).to(dtype)
        times = []
        for _ in range(repeats + 1):  # the first warms oneDNN's kernels up
            start = time.perf_counter()
            for _ in range(4):
                (a @ w1) @ w2
            times.append(time.perf_counter() - start)
        return min(times[1:])

    return best(torch.float32) / max(best(torch.bfloat16), 1e-12)


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The precision a run trains in: ``precision`` itself unless it is ``"auto"``, which
    is resolved for ``device`` by ``choose_precision`` (measuring ``bf16_matmul_speedup``
    on a CPU that reports native bf16). Returns ``(precision, reason)``; reason is ""
    when nothing was resolved."""
    import torch

    if precision != "auto":
        return precision, ""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return choose_precision("cuda", cuda_bf16=native)
    if device.type != "cpu":
        return choose_precision(device.type)
    get = getattr(torch.cpu, "get_capabilities", None)
    capabilities = dict(get()) if get is not None else None
    chosen, reason = choose_precision("cpu", cpu_capabilities=capabilities)
    if chosen == "bf16":
        speedup = bf16_matmul_speedup()
        chosen, reason = choose_precision(
            "cpu", cpu_capabilities=capabilities, bf16_speedup=speedup
        )
    return chosen, reason


def precision_problem(precision: str, device: torch.device) -> str | None:
    """Why ``device`` cannot train in ``precision`` (a resolved one), or None: fp16 off
    CUDA, bf16 on a GPU without it."""
    import torch

    if precision == "fp16" and device.type != "cuda":
        return (
            f"precision fp16 needs a cuda device, but training would run on {device}; "
            "use bf16 or fp32"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return f"precision bf16 is not supported on {describe_device(device)}; use fp32"
    return None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The mixed-precision context for ``precision`` on ``device``: bf16 or fp16 autocast
    on CUDA and CPU, a no-op for fp32 (and "auto", which a run records resolved) and on
    other devices. Training, its evaluation and ``Predictor`` all compute under it, so a
    run's model gives the same classes wherever it is used."""
    import torch

    if precision not in ("bf16", "fp16") or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
