"""``scripts/gpu_check.sh --dry-run``: every part of the CUDA check runs on the CPU, from
the tree on PYTHONPATH, with textual, optuna and plotext unimportable, and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.data import FILES, write_idx
from helpers import synthetic

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
PASSING = ("env", "mlp", "cnn", "bf16_parity", "resume", "telemetry")
SKIPPED = ("sync", "ddp")


def dry_run(out: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(out), FMNIST_DATA=str(data))
    env.pop("DRY_RUN", None)
    return subprocess.run(
        [str(SCRIPT), "--dry-run", *args],
        env=env,
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_dry_run_writes_every_part_and_a_rerun_keeps_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    images = synthetic(2000, 500)
    for split, prefix in ((images.train, "train"), (images.test, "test")):
        write_idx(data / f"{FILES[f'{prefix}_images']}.gz", split.images)
        write_idx(data / f"{FILES[f'{prefix}_labels']}.gz", split.labels)
    out = tmp_path / "out"

    done = dry_run(out, data)
    assert done.returncode == 0, done.stdout + done.stderr
    parts = {
        json.loads(p.read_text())["part"]: json.loads(p.read_text()) for p in out.glob("0*.json")
    }
    assert sorted(parts) == sorted(PASSING + SKIPPED)
    for name, part in parts.items():
        assert part["dry_run"] is True and part["seconds"] >= 0
        want = "pass" if name in PASSING else "skipped"
        assert part["status"] == want, (name, part.get("reason"))
    assert all(part["reason"] for name, part in parts.items() if name in SKIPPED)

    env = parts["env"]
    assert env["importable"] == {"textual": False, "optuna": False, "plotext": False}
    assert env["data"]["train"] == 2000 and env["data"]["test"] == 500
    for name in ("mlp", "cnn"):
        train = parts[name]["train"]
        assert train["device"].startswith("cpu") and train["precision"] in ("fp32", "bf16")
        assert train["samples_per_second"] > 0 and train["epochs"][0]["seconds"] > 0
        assert parts[name]["bare_bf16"]["samples_per_second"] > 0
        assert parts[name]["engine_vs_bare_bf16"] > 0
    reached = parts["mlp"]["bench_to"][0]
    assert reached["target"] == 0.3 and reached["reached"] is True and reached["seconds"] > 0
    parity = parts["bf16_parity"]["configs"][0]
    assert set(parity["test_accuracy"]) == {"fp32", "bf16"} and "bf16_minus_fp32" in parity
    resume = parts["resume"]
    assert resume["stopped"]["exit"] == 130 and resume["stopped"]["batch"] > 0
    assert resume["tensors"] > 0 and resume["tensors_differing"] == []
    assert resume["epoch_metrics"]["whole"] and resume["epoch_metrics"]["resumed"]
    assert parts["telemetry"]["answer"]["available"] is False
    assert parts["telemetry"]["answer"]["reason"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "pass" and summary["dry_run"] is True
    assert {n: p["status"] for n, p in summary["parts"].items()} == {
        n: parts[n]["status"] for n in parts
    }
    assert (out / "logs" / "mlp-train.log").exists()

    before = {p.name: p.read_text() for p in out.glob("0*.json")}
    again = dry_run(out, data)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {p.name: p.read_text() for p in out.glob("0*.json")} == before
    summary = json.loads((out / "summary.json").read_text())
    assert all(p.get("kept") for p in summary["parts"].values())


def test_an_unknown_part_is_refused_with_the_choices(tmp_path: Path) -> None:
    done = dry_run(tmp_path / "out", tmp_path, "--parts", "env,gpu")
    assert done.returncode == 2
    assert "unknown gpu" in done.stderr and "bf16_parity" in done.stderr
