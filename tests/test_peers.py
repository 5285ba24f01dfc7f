"""``fmnist-tui bench --peers``: Lightning and Keras timed beside the engine.

The peers are the optional ``[bench]`` extra. A peer that cannot be imported is said to
be "not installed" (checked here with stand-in packages that fail to import, put first on
``PYTHONPATH``, whether or not the extra is installed); a real peer runs on a tiny
dataset only where it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_helpers import ROOT, write_raw_data

from engine.data import ImageData
from engine.peers import Comparison, Measurement, PeersReport
from tui.cli import main

TIMEOUT = 300.0  # seconds: a fit of two epochs on 256 images that takes longer has hung


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, fashion: ImageData) -> Path:
    """256 training and 100 test images of the real set, as raw IDX files."""
    return write_raw_data(tmp_path_factory.mktemp("peers-data"), fashion, 256, 100)


def missing_peers(folder: Path) -> dict[str, str]:
    """An environment in which ``import lightning`` and ``import keras`` fail as they do
    when the packages are absent."""
    for name in ("lightning", "keras"):
        package = folder / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            f'raise ModuleNotFoundError("No module named {name!r}", name={name!r})\n'
        )
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(folder), path) if p)}


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_peers_not_installed_are_named_and_nothing_is_timed(tmp_path: Path, tiny: Path) -> None:
    env = missing_peers(tmp_path / "site")
    bench = ["-m", "tui.cli", "bench", "--peers", "--batch-sizes", "64", "--repeats", "1"]
    done = run([*bench, "--data-dir", str(tiny)], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for peer in ("lightning", "keras"):
        (line,) = [line for line in done.stdout.splitlines() if line.startswith(peer)]
        assert f"not installed (no module named '{peer}')" in line
        assert "fmnist-tui[bench]" in line
    assert "engine" not in done.stderr  # with no peer to compare with, the engine is not timed

    done = run([*bench, "--data-dir", str(tiny), "--json"], env)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    report = json.loads(line)
    assert report["not_installed"] == {"lightning": "lightning", "keras": "keras"}
    assert [m["kind"] for m in report["measurements"]] == ["lightning", "keras"]
    assert report["comparisons"] == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--peers", "torch"], "--peers: got 'torch'; expected some of lightning, keras"),
        (["--peers", ","], "--peers: got ','; expected some of lightning, keras"),
        (["--peers", "--device", "cuda"], "--peers: measures on the cpu only"),
        (["--peers", "--repeats", "0"], "--batch-sizes and --repeats must be positive"),
    ],
)
def test_bad_peers_input_is_one_line_and_exit_2(argv: list[str], says: str, capsys) -> None:
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fmnist-tui: error: {says}"), err
    assert len(err.strip().splitlines()) == 1


def measured(kind: str, precision: str, batch: int, seconds: float) -> Measurement:
    return Measurement(kind, precision, batch, samples=60000, epoch_seconds=(seconds,) * 3)


def test_comparisons_pair_precisions_and_ratio_is_engine_over_peer() -> None:
    runs = (
        measured("lightning", "fp32", 64, 5.0),
        measured("lightning", "bf16", 64, 4.0),
        Measurement("keras", "fp32", 64, installed=False, missing="keras"),
        measured("engine", "default", 64, 1.0),
        measured("engine", "fp32", 64, 1.25),
        measured("engine", "bf16", 64, 2.0),
    )
    report = PeersReport("test", 60000, 3, runs)
    pairs = [
        (c.peer.precision, c.engine.precision, c.ratio, c.speedup) for c in report.comparisons()
    ]
    assert pairs == [
        ("fp32", "default", 0.2, 5.0),
        ("fp32", "fp32", 0.25, 4.0),
        ("bf16", "bf16", 0.5, 2.0),
    ]
    assert report.not_installed() == {"keras": "keras"}
    assert not report.failed
    failed = Measurement("engine", "bf16", 64, error="exit code 1: boom")
    assert PeersReport("test", 60000, 3, (runs[1], failed)).failed
    assert PeersReport("test", 60000, 3, (runs[1], failed)).comparisons() == []
    assert Comparison(runs[0], runs[3]).ratio == 0.2


@pytest.mark.parametrize("peer", ["keras", "lightning"])
def test_an_installed_peer_trains_in_bf16_as_asked(peer: str, tiny: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec(peer) is None:
        pytest.skip(f"{peer} is not installed (the [bench] extra)")
    root = tmp_path / "root"
    (root / "FashionMNIST").mkdir(parents=True)
    (root / "FashionMNIST" / "raw").symlink_to(tiny)
    done = run(["-m", "engine.peers", peer, "bf16", "32", "--epochs", "2", "--data-dir", str(root)])
    assert done.returncode == 0, done.stderr
    m = Measurement.from_dict(json.loads(done.stdout.splitlines()[-1]))
    assert m.ok and m.samples == 256 and len(m.epoch_seconds) == 1
    assert m.precision_used == {"keras": "mixed_bfloat16", "lightning": "bf16-mixed"}[peer]
    assert peer in m.versions and "batch_size=32" in m.settings
