"""A stand-in for the ``pynvml`` module (nvidia-ml-py) with the GPUs a test describes.

It has the functions ``engine.gpu`` calls, with nvidia-ml-py's signatures, and returns what
they return: pynvml's own ctypes structures (``c_nvmlUtilization_t``, ``c_nvmlMemory_t``),
process lists of ``nvmlFriendlyObject`` built from ``c_nvmlProcessInfo_t``, names and UUIDs
as ``str``, power in milliwatts and temperatures as ``int``. Errors are pynvml's own
``NVMLError`` subclasses, raised where a real driver raises them: ``NotSupported`` for a
field the GPU lacks, ``FunctionNotFound`` for a call the driver does not have,
``LibraryNotFound`` from ``nvmlInit`` where there is no driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pynvml


@dataclass
class FakeGpu:
    """One GPU as NVML reports it; sizes in bytes, power in milliwatts."""

    name: str = "NVIDIA H200"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    utilization: int = 87
    memory_total: int = 150_118_760_448  # 139.8 GiB
    memory_used: int = 43_057_364_992  # 40.1 GiB
    temperature: int = 54
    power_mw: int = 310_000
    power_limit_mw: int = 700_000
    processes: list[tuple[int, int]] = field(default_factory=lambda: [(4242, 42_000_000_000)])
    # Functions (pynvml names) this GPU answers with NVML_ERROR_NOT_SUPPORTED.
    not_supported: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Handle:
    """An opaque device handle, as ``nvmlDeviceGetHandleByIndex`` returns one."""

    index: int


class FakeNvml:
    """The ``pynvml`` functions ``engine.gpu`` uses, over ``gpus``.

    ``missing`` names functions the driver lacks (``FunctionNotFound``), ``unbound`` those
    an older nvidia-ml-py does not define at all (``AttributeError``), ``absent`` makes
    ``nvmlInit`` fail as it does without the NVIDIA library. ``calls`` counts each
    function's calls.
    """

    # pynvml's own error classes and constants.
    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVMLError_FunctionNotFound = pynvml.NVMLError_FunctionNotFound
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLLibraryMismatchError = pynvml.NVMLLibraryMismatchError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(
        self,
        gpus: list[FakeGpu],
        *,
        missing: set[str] | None = None,
        unbound: set[str] | None = None,
        absent: bool = False,
    ) -> None:
        self.unbound = unbound or set()
        self.gpus = gpus
        self.missing = missing or set()
        self.absent = absent
        self.calls: dict[str, int] = {}
        self.initialised = False

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("nvml") and name in object.__getattribute__(self, "unbound"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    def _enter(self, name: str, handle: _Handle | None = None) -> FakeGpu | None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.missing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        if name != "nvmlInit" and not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        if handle is None:
            return None
        gpu = self.gpus[handle.index]
        if name in gpu.not_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlInit(self) -> None:
        self._enter("nvmlInit")
        if self.absent:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(index)

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        gpu = self._enter("nvmlDeviceGetName", handle)
        assert gpu is not None
        return gpu.name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._enter("nvmlDeviceGetUUID", handle)
        assert gpu is not None
        return gpu.uuid

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> Any:
        gpu = self._enter("nvmlDeviceGetUtilizationRates", handle)
        assert gpu is not None
        return pynvml.c_nvmlUtilization_t(gpu=gpu.utilization, memory=gpu.utilization // 2)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: int | None = None) -> Any:
        gpu = self._enter("nvmlDeviceGetMemoryInfo", handle)
        assert gpu is not None
        free = gpu.memory_total - gpu.memory_used
        return pynvml.c_nvmlMemory_t(total=gpu.memory_total, free=free, used=gpu.memory_used)

    def nvmlDeviceGetTemperatureV(
        self, handle: _Handle, sensor: int, version: int = pynvml.nvmlTemperature_v1
    ) -> int:
        gpu = self._enter("nvmlDeviceGetTemperatureV", handle)
        assert gpu is not None and sensor == pynvml.NVML_TEMPERATURE_GPU
        reading = pynvml.c_nvmlTemperature_v1_t(
            version=version, sensorType=sensor, temperature=gpu.temperature
        )
        return int(reading.temperature)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._enter("nvmlDeviceGetTemperature", handle)
        assert gpu is not None and sensor == pynvml.NVML_TEMPERATURE_GPU
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu = self._enter("nvmlDeviceGetPowerUsage", handle)
        assert gpu is not None
        return gpu.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        gpu = self._enter("nvmlDeviceGetEnforcedPowerLimit", handle)
        assert gpu is not None
        return gpu.power_limit_mw

    def _process_objects(self, gpu: FakeGpu) -> list[Any]:
        return [
            pynvml.nvmlStructToFriendlyObject(
                pynvml.c_nvmlProcessInfo_t(
                    pid=pid, usedGpuMemory=used, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0
                )
            )
            for pid, used in gpu.processes
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[Any]:
        gpu = self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        assert gpu is not None
        return self._process_objects(gpu)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[Any]:
        gpu = self._enter("nvmlDeviceGetGraphicsRunningProcesses", handle)
        assert gpu is not None
        return []


def two_gpus() -> list[FakeGpu]:
    """An H200 at work (40.1 of 139.8 GiB used) and an idle one with more free memory."""
    return [
        FakeGpu(uuid="GPU-8f3a1c2e-0000-4000-8000-000000000001"),
        FakeGpu(
            uuid="GPU-1b2c3d4e-0000-4000-8000-000000000002",
            utilization=0,
            memory_used=1_073_741_824,  # 1 GiB
            temperature=31,
            power_mw=75_500,
            processes=[],
        ),
    ]
