"""The last settings: where they are kept, and what a launch makes of them (precedence,
paths gone, a corrupt file). The app's side (saved when a run starts) is in
tests/test_form_navigation.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import TrainConfig
from tui.cli import build_parser
from tui.flags import config_from_args
from tui.last_settings import (
    RESTORED_NOTE,
    read_last_settings,
    save_last_settings,
    settings_path,
    startup_config,
)


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def launch(*argv: str) -> tuple[TrainConfig, list[str]]:
    """The config ``fmnist-tui ARGV`` opens the form with, and the notes it shows."""
    args = build_parser().parse_args(list(argv))
    base, notes = startup_config(getattr(args, "preset", None))
    return config_from_args(args, base=base), notes


def test_where_they_are_kept(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_path() == config_home / "fmnist-tui" / "last-settings.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # not absolute: ignored
    assert settings_path() == Path.home() / ".config" / "fmnist-tui" / "last-settings.json"


def test_precedence_defaults_last_preset_config_flags(tmp_path: Path) -> None:
    assert launch() == (TrainConfig(), [])  # nothing saved yet: the defaults
    data = tmp_path / "data"
    data.mkdir()
    save_last_settings(TrainConfig(lr=0.05, epochs=7, data_dir=str(data), batch_size=32))
    config, notes = launch()
    assert (config.lr, config.epochs, config.data_dir) == (0.05, 7, str(data))
    assert notes == [RESTORED_NOTE]  # said at launch, so the user knows where they came from
    # A preset's training settings win over the last ones; where the data is stays.
    config, _ = launch("--preset", "tutorial")
    assert (config.lr, config.batch_size, config.data_dir) == (1e-3, 64, str(data))
    # A config file over the preset, and flags over both.
    file = tmp_path / "c.toml"
    file.write_text("epochs = 3\nlr = 0.2\n")
    config, _ = launch("--preset", "tutorial", "--config", str(file), "--lr", "0.3")
    assert (config.epochs, config.lr, config.batch_size) == (3, 0.3, 64)


def test_a_path_gone_is_named_and_not_used(tmp_path: Path) -> None:
    data, board = tmp_path / "data", tmp_path / "board"
    data.mkdir()
    board.mkdir()
    save_last_settings(TrainConfig(data_dir=str(data), tensorboard=str(board), epochs=4))
    data.rmdir()
    config, notes = read_last_settings()
    assert config is not None and config.epochs == 4
    assert config.data_dir == "" and config.tensorboard == str(board)
    assert len(notes) == 1 and f"data_dir: {data} no longer exists" in notes[0]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "expected a JSON object with a 'settings' table"),
        ('{"settings": {"lr": "abc"}}', "lr: got 'abc'"),
        ('{"settings": {"colour": 1}}', "colour"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_a_corrupt_file_is_named_and_ignored(text: str | bytes, why: str) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    config, notes = launch()
    assert config == TrainConfig()
    assert len(notes) == 1 and str(path) in notes[0] and "ignored" in notes[0]
    assert why in notes[0]
