"""``fmnist-tui bench --to ACC``: the wall time to a test accuracy, split and reported."""

from __future__ import annotations

import json

import pytest

from engine.bench import process_age
from tui.cli import main

# The real set, cut small: the first epoch passes 0.5 test accuracy, none reaches 0.99.
SMALL = [
    "--train-subset",
    "2000",
    "--test-subset",
    "500",
    "--hidden-sizes",
    "64",
    "--device",
    "cpu",
]


def test_bench_to_reports_the_wall_time_to_the_accuracy_split_in_three(capsys) -> None:
    assert main(["bench", "--to", "0.5", "--epochs", "3", *SMALL, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == 0.5 and out["reached"] is True
    assert out["accuracy"] >= 0.5 and 1 <= out["epoch"] <= 3
    parts = out["startup_seconds"] + out["load_seconds"] + out["train_seconds"]
    assert out["seconds"] == pytest.approx(parts, abs=0.01)
    assert min(out["startup_seconds"], out["load_seconds"], out["train_seconds"]) > 0
    # From process start: this test's process started before the command ran (the
    # figures are rounded to 0.01 s).
    assert out["seconds"] <= process_age() + 0.01
    assert out["precision"] in ("fp32", "bf16")


def test_bench_to_an_accuracy_not_reached_says_so_and_exits_1(capsys) -> None:
    assert main(["bench", "--to", "0.99", "--epochs", "1", *SMALL]) == 1
    out = capsys.readouterr().out
    assert "NOT reached" in out and "after epoch 1" in out


@pytest.mark.parametrize("value", ["abc", "0", "1.5", "-0.3", "nan"])
def test_bench_to_needs_an_accuracy_between_0_and_1(value: str, capsys) -> None:
    assert main(["bench", "--to", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fmnist-tui: error: --to:") and "between 0 and 1" in err
    assert len(err.splitlines()) == 1


def test_bench_takes_the_config_flags_and_refuses_bad_ones(capsys) -> None:
    assert main(["bench", "--to", "0.9", "--lr", "abc"]) == 2
    assert "lr" in capsys.readouterr().err
    assert main(["bench", "--to", "0.9", "--preset", "nope"]) == 2
