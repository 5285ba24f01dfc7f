"""GPU telemetry (``engine.gpu``), ``fmnist-tui gpus``, the Monitor's GPU line and the form's
device field, with NVML faked at its boundary (``fake_nvml``): no GPU needed."""

from __future__ import annotations

import json

import pytest
from fake_nvml import FakeGpu, FakeNvml, two_gpus
from pane_helpers import press_now, shown, wait_for
from textual.widgets import OptionList, Select

from engine.config import TrainConfig
from engine.device import auto_cuda
from engine.gpu import GpuReading, GpuTelemetry, cuda_indices, most_free_cuda
from helpers import synthetic
from tui.app import FmnistApp
from tui.cli import main
from tui.gpu_text import table_rows
from tui.output import columns
from tui.widgets.event_log import EventLog
from tui.widgets.gpu_lines import GpuLines

UUIDS = ["GPU-8f3a1c2e-0000-4000-8000-000000000001", "GPU-1b2c3d4e-0000-4000-8000-000000000002"]


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def telemetry(nvml: FakeNvml, clock: Clock | None = None, **env: str) -> GpuTelemetry:
    return GpuTelemetry(nvml, clock=clock or Clock(), environ=env, cuda_uuids=None)


def test_a_reading_has_nvmls_figures_in_plain_types() -> None:
    snapshot = telemetry(FakeNvml(two_gpus())).read()
    assert snapshot.available and snapshot.reason == ""
    first, second = snapshot.gpus
    assert (first.index, first.cuda, first.name, first.uuid) == (0, 0, "NVIDIA H200", UUIDS[0])
    assert first.utilization == 87 and type(first.utilization) is int
    assert (first.memory_used, first.memory_total) == (43_057_364_992, 150_118_760_448)
    assert first.memory_free == 150_118_760_448 - 43_057_364_992
    assert all(type(v) is int for v in (first.memory_used, first.memory_total, first.memory_free))
    assert first.temperature == 54 and type(first.temperature) is int
    assert (first.power, first.power_limit) == (310.0, 700.0)  # NVML's milliwatts, as W
    assert [(p.pid, p.used_bytes) for p in first.processes or ()] == [(4242, 42_000_000_000)]
    assert second.processes == () and second.power == 75.5
    record = json.loads(json.dumps(snapshot.as_dict()))
    assert record["gpus"][0]["processes"] == [{"pid": 4242, "used_bytes": 42_000_000_000}]


def test_nvml_is_read_at_most_once_a_second() -> None:
    nvml, clock = FakeNvml(two_gpus()), Clock()
    source = telemetry(nvml, clock)
    first = source.read()
    nvml.gpus[0].utilization = 12
    clock.now += 0.99
    assert source.read() is first
    assert nvml.calls["nvmlDeviceGetUtilizationRates"] == 2  # one per GPU, once
    clock.now += 0.01
    assert source.read().gpus[0].utilization == 12
    assert nvml.calls["nvmlDeviceGetUtilizationRates"] == 4
    assert nvml.calls["nvmlInit"] == 1


def test_a_field_the_gpu_does_not_support_is_none() -> None:
    gpu = FakeGpu(
        not_supported={
            "nvmlDeviceGetPowerUsage",
            "nvmlDeviceGetEnforcedPowerLimit",
            "nvmlDeviceGetTemperatureV",
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetGraphicsRunningProcesses",
        }
    )
    (reading,) = telemetry(FakeNvml([gpu])).read().gpus
    assert reading.power is None and reading.power_limit is None
    assert reading.temperature is None and reading.processes is None
    assert reading.utilization == 87  # the rest is read
    rows = table_rows([reading])
    assert rows[1][6:] == ["n/a", "n/a", "n/a"]


def test_temperature_v_and_the_deprecated_call_only_where_v_is_missing() -> None:
    nvml = FakeNvml(two_gpus())
    assert [g.temperature for g in telemetry(nvml).read().gpus] == [54, 31]
    assert "nvmlDeviceGetTemperature" not in nvml.calls
    for old in (
        FakeNvml(two_gpus(), missing={"nvmlDeviceGetTemperatureV"}),  # driver without it
        FakeNvml(two_gpus(), unbound={"nvmlDeviceGetTemperatureV"}),  # older nvidia-ml-py
    ):
        clock = Clock()
        source = telemetry(old, clock)
        assert [g.temperature for g in source.read().gpus] == [54, 31]
        clock.now += 1
        source.read()
        assert old.calls["nvmlDeviceGetTemperature"] == 4
        assert old.calls.get("nvmlDeviceGetTemperatureV", 0) <= 1  # tried once, then not


@pytest.mark.parametrize(
    ("visible", "cuda"),
    [
        (None, [0, 1]),
        ("1", [None, 0]),
        ("1,0", [1, 0]),
        ("", [None, None]),
        ("-1", [None, None]),
        ("0,7,1", [0, None]),  # an entry naming no device ends the list, as in CUDA
        ("GPU-1b2c", [None, 0]),  # a UUID prefix
        (f"{UUIDS[1]},{UUIDS[0]}", [1, 0]),
        ("GPU-", [None, None]),
    ],
)
def test_cuda_visible_devices_maps_nvml_devices_to_cuda_indices(visible, cuda) -> None:
    assert cuda_indices(UUIDS, visible) == cuda
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert [g.cuda for g in telemetry(FakeNvml(two_gpus()), **env).read().gpus] == cuda


def test_torchs_uuids_decide_where_given() -> None:
    torch_uuids = [UUIDS[1].removeprefix("GPU-"), UUIDS[0].upper()]
    assert cuda_indices(UUIDS, "0", torch_uuids) == [1, 0]


def reading(cuda: int | None, free: int | None) -> GpuReading:
    return GpuReading(0, cuda, "g", "u", None, None, None, free, None, None, None, None)


def test_auto_picks_the_visible_gpu_with_the_most_free_memory() -> None:
    assert most_free_cuda([reading(0, 10), reading(1, 30), reading(2, 20)]) == 1
    assert most_free_cuda([reading(0, 30), reading(1, 30)]) == 0
    assert most_free_cuda([reading(None, 99), reading(0, 5), reading(1, None)]) == 0
    assert most_free_cuda([]) is None
    assert auto_cuda(2, telemetry(FakeNvml(two_gpus()))) == "cuda:1"
    assert auto_cuda(1, telemetry(FakeNvml(two_gpus()))) == "cuda"  # no such index here
    assert auto_cuda(2, telemetry(FakeNvml([], absent=True))) == "cuda"


def test_no_nvml_is_a_reason_not_an_error() -> None:
    source = telemetry(FakeNvml(two_gpus(), absent=True))
    assert not source.available
    assert source.reason == "no NVIDIA GPU: NVML library not found"
    assert source.read().as_dict() == {"available": False, "reason": source.reason, "gpus": []}


def test_gpus_command_here_says_there_is_no_nvidia_gpu(capsys) -> None:
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no NVIDIA GPU") and out.count("\n") == 1
    assert main(["gpus", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["available"] is False and record["gpus"] == []
    assert record["reason"].startswith("no NVIDIA GPU")


def test_the_gpus_table_with_two_gpus() -> None:
    gpus = telemetry(FakeNvml(two_gpus()), CUDA_VISIBLE_DEVICES="1").read().gpus
    lines = columns(table_rows(gpus), gap="  ")
    assert lines[0].split() == [
        "gpu", "cuda", "name", "util", "memory", "used/total", "free", "temp", "power", "procs",
    ]  # fmt: skip
    assert lines[1].split() == [
        "0", "-", "NVIDIA", "H200", "87%", "40.1/139.8", "GiB", "99.7", "GiB", "54°C",
        "310/700", "W", "1",
    ]  # fmt: skip
    assert lines[2].split()[:2] == ["1", "cuda:0"] and "138.8" in lines[2]


async def test_the_monitor_shows_the_gpus_in_two_lines_and_g_expands_them() -> None:
    gpus = two_gpus() + [FakeGpu(uuid=f"GPU-{i}aaa", memory_used=i * 2**30) for i in range(3, 9)]
    config = TrainConfig(epochs=1, device="cpu", runs_dir="never-made")
    app = FmnistApp(config, data=synthetic(64, 32), gpu_telemetry=telemetry(FakeNvml(gpus)))
    async with app.run_test(size=(80, 24)) as pilot:
        await press_now(pilot, "3")
        lines = app.query_one(GpuLines)
        await wait_for(pilot, lambda: lines.display and lines.size.height > 0)
        text = shown(lines)
        assert lines.size.height == 2 and "GPU0 H200  87%  40.1/139.8 GiB" in text
        assert "more (g)" in text.splitlines()[-1]
        await press_now(pilot, "g")
        await wait_for(pilot, lambda: lines.size.height == 8)
        assert "1 proc: 4242 39.1 GiB" in shown(lines).splitlines()[0]
        assert not any("NVIDIA GPU" in t for t in app.query_one(EventLog).entry_texts)

        await press_now(pilot, "2")
        select = app.query_one("#device-gpus", Select)
        options = select.query_one(OptionList)
        await wait_for(pilot, lambda: select.display and options.option_count == 9)
        listed = [str(options.get_option_at_index(i).prompt) for i in range(9)]
        # The prompt, then each GPU by its cuda:N with its free memory.
        assert listed[1:3] == ["cuda:0  H200  99.7 GiB free", "cuda:1  H200  138.8 GiB free"]
        select.value = "cuda:1"
        await wait_for(pilot, lambda: app.config.device == "cuda:1")
        assert select.is_blank()  # ready to choose again


async def test_without_nvml_the_log_says_so_once() -> None:
    config = TrainConfig(epochs=1, device="cpu", runs_dir="never-made")
    nvml = FakeNvml([], absent=True)
    app = FmnistApp(config, data=synthetic(64, 32), gpu_telemetry=telemetry(nvml))
    async with app.run_test(size=(80, 24)) as pilot:
        await press_now(pilot, "3")
        log = app.query_one(EventLog)
        said = "No NVIDIA GPU: NVML library not found"
        await wait_for(pilot, lambda: said in log.entry_texts)
        await press_now(pilot, "2", "3", "2", "3")
        await wait_for(pilot, lambda: app.current_pane == "monitor")
        await pilot.pause()
        assert log.entry_texts.count(said) == 1
        assert not app.query_one(GpuLines).display
        assert not app.query_one("#row-device-gpus").display
