"""precision = "auto": what it resolves to, that a run records and shows the result, and
that bf16 autocast trains as well as fp32."""

from __future__ import annotations

import json

import pytest
import torch

from engine.config import TrainConfig, preset
from engine.device import BF16_MIN_SPEEDUP, choose_precision, resolve_precision
from engine.events import RunStarted
from engine.runs import Run
from engine.trainer import Trainer
from tests.helpers import cfg, synthetic

NATIVE = {"avx512_bf16": True, "amx_bf16": False, "avx2": True}
EMULATED = {"avx512_bf16": False, "amx_bf16": False, "avx512_f": True}


@pytest.mark.parametrize(
    ("device", "kwargs", "expected"),
    [
        ("cuda", {"cuda_bf16": True}, "bf16"),
        ("cuda", {"cuda_bf16": False}, "fp32"),
        ("cpu", {"cpu_capabilities": None}, "fp32"),
        ("cpu", {"cpu_capabilities": EMULATED}, "fp32"),
        ("cpu", {"cpu_capabilities": NATIVE}, "bf16"),
        ("cpu", {"cpu_capabilities": {"amx_bf16": True}}, "bf16"),
        ("cpu", {"cpu_capabilities": NATIVE, "bf16_speedup": 4.5}, "bf16"),
        ("cpu", {"cpu_capabilities": NATIVE, "bf16_speedup": 0.57}, "fp32"),
        ("mps", {}, "fp32"),
    ],
)
def test_auto_uses_bf16_only_where_the_device_computes_it_natively(
    device: str, kwargs: dict[str, object], expected: str
) -> None:
    chosen, reason = choose_precision(device, **kwargs)  # type: ignore[arg-type]
    assert chosen == expected
    assert reason


def test_a_native_bf16_cpu_that_runs_bf16_slower_keeps_fp32_and_says_why() -> None:
    chosen, reason = choose_precision(
        "cpu", cpu_capabilities=NATIVE, bf16_speedup=BF16_MIN_SPEEDUP - 0.01
    )
    assert chosen == "fp32"
    assert "avx512_bf16" in reason and "as fast as fp32" in reason


def test_auto_on_this_machine_agrees_with_its_capabilities() -> None:
    chosen, reason = resolve_precision("auto", torch.device("cpu"))
    capabilities = torch.cpu.get_capabilities()
    if not (capabilities.get("avx512_bf16") or capabilities.get("amx_bf16")):
        assert chosen == "fp32" and "no native bf16" in reason
    assert chosen in ("fp32", "bf16")
    # A precision given outright is kept, unexplained.
    assert resolve_precision("bf16", torch.device("cpu")) == ("bf16", "")


def test_auto_is_the_default_and_the_tutorial_pins_fp32() -> None:
    assert TrainConfig().precision == "auto"
    assert preset("tutorial").precision == "fp32"


def test_a_run_records_and_shows_what_auto_chose_and_resumes_with_it(tmp_path) -> None:
    expected, _reason = resolve_precision("auto", torch.device("cpu"))
    started: list[RunStarted] = []
    trainer = Trainer(
        cfg(tmp_path, epochs=1, precision="auto"),
        data=synthetic(),
        listeners=(lambda e: started.append(e) if isinstance(e, RunStarted) else None,),
    )
    trainer.fit()
    run = trainer.run
    assert run is not None
    assert run.config().precision == expected
    assert json.loads(run.config_path.read_text())["precision"] == expected
    [event] = started
    assert event.config["precision"] == expected
    assert any(note.startswith(f"precision auto: {expected}, as ") for note in event.notes)
    checkpoint = torch.load(run.last_path, weights_only=True)
    assert checkpoint["config"]["precision"] == expected

    resumed: list[RunStarted] = []
    again = Trainer.resume(
        run,
        data=synthetic(),
        epochs=2,
        listeners=(lambda e: resumed.append(e) if isinstance(e, RunStarted) else None,),
    )
    again.fit()
    [event] = resumed
    assert event.config["precision"] == expected
    assert not any(note.startswith("precision auto") for note in event.notes)


def test_a_folder_made_beforehand_records_the_resolved_precision(tmp_path) -> None:
    # As a detached run: the folder is made (with auto) before its trainer starts.
    config = cfg(tmp_path, epochs=1, precision="auto")
    run = Run.create(config)
    assert run.config().precision == "auto"
    Trainer(config, data=synthetic(), run=run).fit()
    assert run.config().precision in ("fp32", "bf16")
    # And it resumes: config.json and last.pt agree.
    Trainer.resume(run, data=synthetic(), epochs=2).fit()
    assert run.read_status()["state"] == "finished"


def test_bf16_autocast_trains_as_well_as_fp32_on_small_data(tmp_path, small) -> None:
    """The final train loss under bf16 autocast is within 5% of fp32's (2,000 real images,
    two epochs of the MLP with one hidden layer of 64)."""
    losses = {}
    for precision in ("fp32", "bf16"):
        config = cfg(tmp_path, epochs=2, batch_size=64, precision=precision)
        result = Trainer(config, data=small, record=False).fit()
        losses[precision] = result.history[-1].train_loss
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05), losses
