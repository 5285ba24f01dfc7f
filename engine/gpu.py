"""NVIDIA GPU telemetry from NVML (the ``pynvml`` module of the ``nvidia-ml-py`` package).

``GpuTelemetry().read()`` gives one ``GpuSnapshot``: per GPU its name, UUID, utilisation,
memory, temperature, power and processes, read at most once a second (a read within the
interval returns the last one). Each reading names the ``cuda:N`` index this process sees
the GPU as, matched by UUID and honouring ``CUDA_VISIBLE_DEVICES``.

Where NVML is absent (no NVIDIA driver, a Mac, nvidia-ml-py not installed) the telemetry is
not ``available`` and says why in ``reason``; nothing raises. A field a GPU does not
support (NVML's ``NotSupported``) is None. No torch is imported here: the CLI's ``gpus``
and the app's Monitor read GPUs without loading it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# NVML_TEMPERATURE_GPU: the GPU die's sensor (nvmlTemperatureSensors_t).
_TEMPERATURE_GPU = 0
NO_GPU = "no NVIDIA GPU"


@dataclass(frozen=True)
class GpuProcess:
    """A process using a GPU: its ``pid`` and the GPU memory it holds in bytes
    (None where NVML cannot tell, as under Windows' WDDM)."""

    pid: int
    used_bytes: int | None


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment. ``index`` is NVML's (``nvidia-smi``'s) index; ``cuda`` the
    ``cuda:N`` index of this process for it, None when ``CUDA_VISIBLE_DEVICES`` hides it.
    Every measured field is None where the GPU does not support it: ``utilization`` in
    percent (0-100, the GPU's busy time over NVML's last sample period), memory in bytes,
    ``temperature`` in °C, ``power`` and ``power_limit`` in watts, ``processes`` the
    compute and graphics processes on it."""

    index: int
    cuda: int | None
    name: str
    uuid: str
    utilization: int | None
    memory_used: int | None
    memory_total: int | None
    memory_free: int | None
    temperature: int | None
    power: float | None
    power_limit: float | None
    processes: tuple[GpuProcess, ...] | None

    def as_dict(self) -> dict[str, Any]:
        """The reading as plain JSON values (bytes as ints, processes as a list of dicts)."""
        record = asdict(self)
        if self.processes is not None:
            record["processes"] = [asdict(p) for p in self.processes]
        return record


@dataclass(frozen=True)
class GpuSnapshot:
    """Every GPU NVML sees, read at ``time`` (the telemetry's clock, seconds).
    ``available`` is False, with ``reason`` saying why and no GPUs, where NVML is absent."""

    available: bool
    reason: str
    gpus: tuple[GpuReading, ...]
    time: float

    def as_dict(self) -> dict[str, Any]:
        """``{"available": bool, "reason": str, "gpus": [...]}`` as ``fmnist-tui gpus
        --json`` prints it."""
        return {
            "available": self.available,
            "reason": self.reason,
            "gpus": [gpu.as_dict() for gpu in self.gpus],
        }


def _uuid_key(uuid: str) -> str:
    """A UUID as compared: lower case, without NVML's ``GPU-`` prefix (torch's has none)."""
    key = uuid.strip().lower()
    return key[4:] if key.startswith("gpu-") else key


def cuda_indices(
    uuids: Sequence[str],
    visible: str | None,
    cuda_uuids: Sequence[str] | None = None,
) -> list[int | None]:
    """For each NVML device (``uuids`` in NVML order), the ``cuda:N`` index this process
    sees it as, or None when hidden.

    ``cuda_uuids`` (torch's per-device UUIDs, index N at position N), when given, decide.
    Otherwise ``visible`` (``CUDA_VISIBLE_DEVICES``) does, as CUDA reads it: unset (None),
    every device in NVML order; else comma-separated entries, each an NVML index or a UUID
    or a unique UUID prefix (``GPU-8f3a``), in the order given; an entry that names no
    device (or a device listed before) ends the list, as in CUDA. Empty or ``-1``: none.
    """
    keys = [_uuid_key(u) for u in uuids]
    result: list[int | None] = [None] * len(uuids)
    if cuda_uuids is not None:
        for n, uuid in enumerate(cuda_uuids):
            key = _uuid_key(uuid)
            if key in keys:
                result[keys.index(key)] = n
        return result
    if visible is None:
        return list(range(len(uuids)))
    for n, entry in enumerate(visible.split(",")):
        entry = entry.strip()
        found: int | None = None
        if entry.isdigit():
            found = int(entry) if int(entry) < len(uuids) else None
        elif entry.lower().startswith("gpu-") and len(entry) > 4:
            matches = [i for i, key in enumerate(keys) if key.startswith(_uuid_key(entry))]
            found = matches[0] if len(matches) == 1 else None
        if found is None or result[found] is not None:
            break
        result[found] = n
    return result


def most_free_cuda(readings: Iterable[GpuReading]) -> int | None:
    """The ``cuda`` index of the visible GPU with the most free memory (the lowest index
    among equals), or None when no visible GPU reports its free memory."""
    candidates = [
        (gpu.memory_free, -gpu.cuda)
        for gpu in readings
        if gpu.cuda is not None and gpu.memory_free is not None
    ]
    return -max(candidates)[1] if candidates else None


def torch_cuda_uuids() -> list[str] | None:
    """torch's UUID of each ``cuda:N``, where torch is already imported and has CUDA
    initialised (this never imports torch nor initialises CUDA); None otherwise."""
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        count = int(torch.cuda.device_count())
        return [str(torch.cuda.get_device_properties(i).uuid) for i in range(count)]
    except (AttributeError, RuntimeError):
        return None


class GpuTelemetry:
    """Per-GPU readings from NVML, at most one read per ``interval`` seconds.

    ``nvml`` is the NVML binding module (``pynvml`` from nvidia-ml-py, imported when None;
    tests pass a stand-in with its functions). ``clock`` gives seconds (monotonic).
    ``CUDA_VISIBLE_DEVICES`` is read from ``environ`` (``os.environ`` when None) and
    ``cuda_uuids`` are torch's device UUIDs (``torch_cuda_uuids()`` at each read when None).
    NVML is initialised at the first use and shut down by ``close()``. Thread-safe.
    """

    def __init__(
        self,
        nvml: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 1.0,
        environ: Mapping[str, str] | None = None,
        cuda_uuids: Sequence[str] | None = None,
    ) -> None:
        self._nvml = nvml
        self._clock = clock
        self._interval = interval
        self._visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
        self._cuda_uuids = list(cuda_uuids) if cuda_uuids is not None else None
        self._lock = threading.Lock()
        self._started = False
        self._reason = ""
        self._devices: list[tuple[Any, str, str]] = []  # (handle, name, uuid) in NVML order
        self._old_temperature = False
        self._last: GpuSnapshot | None = None

    @property
    def available(self) -> bool:
        """Whether NVML is here and sees at least one GPU (initialises NVML once)."""
        with self._lock:
            self._start()
            return not self._reason

    @property
    def reason(self) -> str:
        """Why there is no telemetry (``"no NVIDIA GPU: NVML library not found"``), or ""."""
        with self._lock:
            self._start()
            return self._reason

    def read(self) -> GpuSnapshot:
        """Every GPU's reading; the last one again when it is less than ``interval``
        seconds old. Never raises for a missing NVML or an unsupported field."""
        with self._lock:
            self._start()
            now = self._clock()
            if self._last is not None and now - self._last.time < self._interval:
                return self._last
            if self._reason:
                self._last = GpuSnapshot(False, self._reason, (), now)
                return self._last
            uuids = self._cuda_uuids if self._cuda_uuids is not None else torch_cuda_uuids()
            cuda = cuda_indices([d[2] for d in self._devices], self._visible, uuids)
            gpus = tuple(
                self._reading(index, cuda[index], handle, name, uuid)
                for index, (handle, name, uuid) in enumerate(self._devices)
            )
            self._last = GpuSnapshot(True, "", gpus, now)
            return self._last

    def close(self) -> None:
        """Shut NVML down (where it was started); a later read starts it again."""
        with self._lock:
            if self._started and not self._reason:
                # Shutting down: an error has nothing left to report it to.
                with contextlib.suppress(Exception):
                    self._nvml.nvmlShutdown()
            self._started = False
            self._reason = ""
            self._devices = []
            self._last = None

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._reason = self._init()

    def _init(self) -> str:
        """Load and initialise NVML and list the devices; the reason it failed, or ""."""
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")
            except ImportError:
                return f"{NO_GPU} telemetry: nvidia-ml-py is not installed"
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError_LibraryNotFound:
            return f"{NO_GPU}: NVML library not found"
        except nvml.NVMLError_DriverNotLoaded:
            return f"{NO_GPU}: the NVIDIA driver is not loaded"
        except nvml.NVMLError as exc:
            return f"{NO_GPU} telemetry: NVML failed to start ({exc})"
        try:
            devices = []
            for index in range(int(nvml.nvmlDeviceGetCount())):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                devices.append(
                    (
                        handle,
                        str(nvml.nvmlDeviceGetName(handle)),
                        str(nvml.nvmlDeviceGetUUID(handle)),
                    )
                )
        except nvml.NVMLError as exc:
            return f"{NO_GPU} telemetry: NVML failed to list the GPUs ({exc})"
        if not devices:
            return f"{NO_GPU}: NVML sees no device"
        self._devices = devices
        return ""

    def _field(self, call: Callable[[], T]) -> T | None:
        """``call()``, or None where NVML reports an error for this field (not supported,
        no permission, a GPU gone): a reading shows "n/a" rather than failing."""
        try:
            return call()
        except self._nvml.NVMLError:
            return None

    def _temperature(self, handle: Any) -> int | None:
        nvml = self._nvml
        if not self._old_temperature:
            try:
                return int(nvml.nvmlDeviceGetTemperatureV(handle, _TEMPERATURE_GPU))
            except (AttributeError, nvml.NVMLError_FunctionNotFound):
                # A driver (or binding) older than the V call: the deprecated one, from now on.
                self._old_temperature = True
            except nvml.NVMLError:
                return None
        return self._field(lambda: int(nvml.nvmlDeviceGetTemperature(handle, _TEMPERATURE_GPU)))

    def _process_list(self, handle: Any, call: str) -> list[Any] | None:
        """NVML's process list ``call`` (compute or graphics), or None where unsupported."""
        nvml = self._nvml
        # An older nvidia-ml-py has no mismatch error: NVMLError stands in (caught first).
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", nvml.NVMLError)
        try:
            return list(getattr(nvml, call)(handle))
        except mismatch:
            # A driver without the _v3 call that the unversioned name maps to.
            return self._field(lambda: list(getattr(nvml, call + "_v2")(handle)))
        except nvml.NVMLError:
            return None

    def _processes(self, handle: Any) -> tuple[GpuProcess, ...] | None:
        compute = self._process_list(handle, "nvmlDeviceGetComputeRunningProcesses")
        graphics = self._process_list(handle, "nvmlDeviceGetGraphicsRunningProcesses")
        if compute is None and graphics is None:
            return None
        found: dict[int, int | None] = {}
        for proc in (compute or []) + (graphics or []):
            used = proc.usedGpuMemory
            found[int(proc.pid)] = None if used is None else int(used)
        return tuple(GpuProcess(pid, used) for pid, used in sorted(found.items()))

    def _reading(
        self, index: int, cuda: int | None, handle: Any, name: str, uuid: str
    ) -> GpuReading:
        nvml = self._nvml
        util = self._field(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        memory = self._field(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power = self._field(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit = self._field(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        return GpuReading(
            index=index,
            cuda=cuda,
            name=name,
            uuid=uuid,
            utilization=None if util is None else int(util.gpu),
            memory_used=None if memory is None else int(memory.used),
            memory_total=None if memory is None else int(memory.total),
            memory_free=None if memory is None else int(memory.free),
            temperature=self._temperature(handle),
            power=None if power is None else int(power) / 1000,  # NVML gives milliwatts
            power_limit=None if limit is None else int(limit) / 1000,
            processes=self._processes(handle),
        )
