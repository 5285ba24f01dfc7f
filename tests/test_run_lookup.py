"""A run named as the app shows it: the whole id, a path, its start, or its end (cut ids
begin with "…")."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import CheckpointError
from engine.runs import Run
from helpers import cfg
from tui.cli import main

IDS = ("20261203-075411-mlp-de7b", "20261203-075943-mlp-b75b", "20261203-080102-cnn-a75b")


def make_runs(tmp_path: Path) -> Path:
    """A runs folder holding runs with the ids in ``IDS``."""
    base = tmp_path / "runs"
    for run_id in IDS:
        made = Run.create(cfg(tmp_path)).path
        made.rename(base / run_id)
    return base


def test_a_run_is_found_by_its_id_path_start_or_unique_end(tmp_path: Path) -> None:
    base = make_runs(tmp_path)
    for ref in (
        IDS[0],
        str(base / IDS[0]),
        "20261203-0754",
        "075411-mlp-de7b",
        "de7b",
        "…075411-mlp-de7b",
        "...de7b",
    ):
        assert Run.open(ref, base).id == IDS[0], ref
    assert Run.open("cnn-a75b", base).id == IDS[2]


def test_an_end_or_start_of_several_runs_names_them(tmp_path: Path) -> None:
    base = make_runs(tmp_path)
    with pytest.raises(CheckpointError, match="ambiguous") as caught:
        Run.open("75b", base)
    assert IDS[1] in str(caught.value) and IDS[2] in str(caught.value)
    assert IDS[0] not in str(caught.value)
    with pytest.raises(CheckpointError, match="no run '…'"):
        Run.open("…", base)
    with pytest.raises(CheckpointError, match="no run 'ffff'"):
        Run.open("ffff", base)


def test_the_cli_takes_an_end_and_refuses_an_ambiguous_one(tmp_path: Path, capsys) -> None:
    base = make_runs(tmp_path)
    assert main(["export", "…b75b", "--runs-dir", str(base)]) == 2
    err = capsys.readouterr().err
    # Found, but never trained: the error is about its checkpoint, not the lookup.
    assert "20261203-075943-mlp-b75b" in err and "no run" not in err
    assert main(["predict", "75b", "--runs-dir", str(base)]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and IDS[1] in err and IDS[2] in err
    assert main(["train", "--resume", "0000", "--runs-dir", str(base)]) == 2
    assert "no run '0000'" in capsys.readouterr().err
