"""What the commands say: one epoch in the singular, percentages in the tables, aligned
``predict`` columns, checkpoint events naming the file of their reason, and the help of
every command (each option described, the commands first, the settings' bounds)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import FIELDS
from tui.cli import main
from tui.flags import bounds_text, flag

SMALL = ["--train-subset", "1000", "--test-subset", "200", "--hidden-sizes", "64"]
COMMANDS = ["train", "check-data", "attach", "search", "export", "runs", "predict", "bench"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One run of one epoch (real Fashion-MNIST, small), and what `train` printed."""
    runs = tmp_path_factory.mktemp("runs")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--epochs", "1", "--runs-dir", str(runs), *SMALL])
    assert code == 0, err.getvalue()
    return runs, out.getvalue() + err.getvalue()


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_one_epoch_is_one_epoch(trained: tuple[Path, str], capsys) -> None:
    runs, said = trained
    assert "finished: 1 epoch," in said
    table = run_main(capsys, "runs", "--runs-dir", str(runs))
    assert "· 1 epoch" in table
    for text in (said, table):
        assert not re.search(r"\b1 epochs\b", text), text


def test_runs_table_shows_percentages_and_json_csv_keep_fractions(
    trained: tuple[Path, str], capsys
) -> None:
    runs, _ = trained
    [record] = [
        json.loads(line)
        for line in run_main(capsys, "runs", "--json", "--runs-dir", str(runs)).splitlines()
    ]
    best, test = record["best_accuracy"], record["best_test_accuracy"]
    assert 0 < best <= 1 and 0 < test <= 1
    header, row = run_main(capsys, "runs", "--runs-dir", str(runs)).splitlines()
    assert f"{best:.1%} val" in row and f"{test:.1%}" in row
    assert f"{best:.4f}" not in row  # no fraction in the table
    # The columns line up under their headings (right-aligned figures end together).
    assert header.index("test acc") + len("test acc") == row.index(f"{test:.1%}") + len(
        f"{test:.1%}"
    )
    [csv_row] = list(
        csv.DictReader(io.StringIO(run_main(capsys, "runs", "--csv", "--runs-dir", str(runs))))
    )
    assert float(csv_row["best_accuracy"]) == pytest.approx(best)


def test_checkpoint_events_name_the_file_of_their_reason(trained: tuple[Path, str]) -> None:
    runs, _ = trained
    [run] = list(runs.iterdir())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    saved = {e["reason"]: Path(e["path"]).name for e in events if e["event"] == "checkpoint"}
    # One epoch: the checkpoint before the first batch, and the epoch's, its best.
    assert saved == {"start": "last.pt", "best": "best.pt"}
    assert (run / "best.pt").is_file()


def test_predict_columns_align_whatever_the_file_names(
    trained: tuple[Path, str], tmp_path: Path, capsys
) -> None:
    runs, _ = trained
    [run] = list(runs.iterdir())
    pixels = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    names = [tmp_path / "a.png", tmp_path / ("a-long-file-name-of-a-photo-" * 3 + ".png")]
    for name in names:
        Image.fromarray(pixels).save(name)
    out = run_main(capsys, "predict", str(run), *map(str, names))
    lines = out.splitlines()
    assert len(lines) == 2
    # The same image twice: the same class and percentage, starting in the same column,
    # two spaces after the longer name.
    rests = [line[len(str(name)) :] for line, name in zip(lines, names, strict=True)]
    starts = [len(line) - len(rest.lstrip()) for line, rest in zip(lines, rests, strict=True)]
    assert starts[0] == starts[1] == len(str(names[1])) + 2
    assert rests[0].lstrip() == rests[1].lstrip() != ""
    own = run_main(capsys, "predict", str(run), "--count", "3").splitlines()
    assert len({line.index("%") for line in own}) == 1


def options_of(text: str) -> dict[str, str]:
    """Each option line of an argparse help (``  --flag ARG  description``) and its
    description: the rest of its line, or the more-indented lines under it."""
    found: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m:
            current = m.group(1)
            found[current] = m.group(2) or ""
        elif current is not None and re.match(r"\s{4,}\S", line):
            found[current] += " " + line.strip()
        else:
            current = None
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_is_described(command: str, capsys) -> None:
    text = help_text(capsys, command)
    # The command's own usage line, not the app's usage text glued in front of it.
    assert text.startswith(f"usage: fmnist-tui {command} [-h]"), text[:200]
    options = options_of(text)
    assert "-h, --help" in options
    assert [name for name, text in options.items() if not text.strip()] == []


def test_the_fast_preset_help_names_the_model(capsys) -> None:
    described = " ".join(help_text(capsys).split())
    assert "fast: the PyTorch tutorial's 784-512-512-10 MLP" in described
    assert "the notes'" not in described


def test_top_level_help_lists_the_commands_first(capsys) -> None:
    text = help_text(capsys)
    usage = text.split("\n\n")[0]
    assert len(usage.splitlines()) <= 3, usage
    commands = text.index("commands:")
    first_option = text.index("\n  --")
    assert commands < first_option
    section = text[commands:first_option]
    for command in COMMANDS:
        assert re.search(rf"^    {re.escape(command)}\s+\S", section, re.M), command


def test_train_help_shows_each_settings_bounds(capsys) -> None:
    options = options_of(help_text(capsys, "train"))
    described = {
        name.split()[0].rstrip(","): " ".join(text.split()) for name, text in options.items()
    }
    bounded = [spec for spec in FIELDS.values() if bounds_text(spec)]
    assert len(bounded) > 10
    for spec in bounded:
        assert bounds_text(spec) in described[flag(spec.name)], spec.name
    assert "greater than 0" in described["--lr"]


def test_train_help_says_what_an_empty_default_is(capsys) -> None:
    options = options_of(help_text(capsys, "train"))
    described = {
        name.split()[0].rstrip(","): " ".join(text.split()) for name, text in options.items()
    }
    assert not [name for name, text in described.items() if "(default: )" in text]
    assert described["--name"].endswith("(default: none)")
    assert "(empty: search) (default: empty)" in described["--data-dir"]


def test_runs_table_fits_a_terminal_and_stays_whole_in_a_pipe(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tui.output import fit_columns

    ids = ["20261203-075411-mlp-de7b", "20261203-075943-mlp-b75b"]
    rows = [["run", "state", "settings"]] + [
        [i, "finished", "mlp [512-512] relu · " * 5] for i in ids
    ]
    fitted = fit_columns(rows, 60, gap="  ")
    assert [len(line) for line in fitted] == [len(fitted[0]), 60, 60]
    assert fitted[1].startswith(ids[0] + "  finished  mlp [512") and fitted[1].endswith("…")
    narrow = fit_columns(rows, 26, gap="  ")  # no room for settings: dropped, ids cut
    assert narrow[1:] == ["…075411-mlp-de7b  finished", "…075943-mlp-b75b  finished"]

    from engine.runs import Run
    from helpers import cfg

    runs = Run.create(cfg(tmp_path)).path.parent  # a run of 2 epochs, none trained yet
    leader, follower = os.openpty()
    env = {**os.environ, "COLUMNS": "80", "LINES": "24"}
    command = [sys.executable, "-m", "tui.cli", "runs", "--runs-dir", str(runs)]
    for stdout, wide in ((follower, False), (subprocess.PIPE, True)):
        done = subprocess.run(command, stdout=stdout, env=env, timeout=120, check=True)
        text = os.read(leader, 65536).decode() if stdout == follower else done.stdout.decode()
        lines = text.splitlines()
        assert len(lines) == 2 and ("epochs" in lines[-1]) == wide, lines
        assert all(len(line) <= 80 for line in lines) != wide
    os.close(leader)
    os.close(follower)
