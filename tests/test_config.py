from __future__ import annotations

import json
import math

import pytest

from engine.config import FIELDS, PRESETS, TrainConfig, parse_text, preset
from engine.errors import ConfigError


def bad_texts(name: str) -> list[str]:
    """Typed text each field must refuse: wrong type, out of range, NaN, huge, empty, junk."""
    spec = FIELDS[name]
    junk = ["", "   ", "abc", "\x1b[31m"]
    if spec.kind == "int":
        out = [*junk, "1.5", "1e3", "nan"]
        if spec.low is not None:
            out.append(str(int(spec.low) - 1))
        out.append(str(int(spec.high) + 1) if spec.high is not None else "1" + "0" * 30)
        return out
    if spec.kind == "float":
        out = [*junk, "nan", "inf", "-inf", "1e400"]
        if spec.low is not None:
            out.append(repr(spec.low if spec.low_open else spec.low - 1))
        if spec.high is not None:
            out.append(repr(spec.high if spec.high_open else spec.high * 10 + 1))
        return out
    if spec.kind == "bool":
        return [*junk, "maybe", "2"]
    if spec.kind == "ints":
        return [*junk, "a,b", "0", "-5", ",".join(["8"] * (spec.max_items + 1)), "99999999"]
    if spec.kind == "choice":
        return [*junk, "bogus"]
    if spec.kind == "device":
        return [*junk, "gpu", "cuda:x", "cuda:"]
    if name == "name":
        return ["a/b", "../x", "x" * 65]
    if name == "runs_dir":
        return ["", "  "]
    return ["bad\x00path"]


CASES = [(name, text) for name in FIELDS for text in bad_texts(name)]


@pytest.mark.parametrize(("name", "text"), CASES)
def test_every_field_refuses_bad_text_naming_field_value_and_allowed(name: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig().with_text({name: text})
    [problem] = info.value.problems
    assert problem.startswith(f"{name}:")
    assert "expected" in problem or "must" in problem
    assert FIELDS[name].allowed() in problem


@pytest.mark.parametrize("name", list(FIELDS))
def test_every_field_refuses_wrong_python_type(name: str) -> None:
    spec = FIELDS[name]
    wrong = {
        "bool": "true",
        "int": 2.5,
        "float": "0.1",
        "ints": "512",
        "choice": 3,
        "model": 3,
        "device": None,
        "text": 7,
    }[spec.kind]
    with pytest.raises(ConfigError, match=f"^{name}:"):
        TrainConfig(**{name: wrong})


@pytest.mark.parametrize("name", list(FIELDS))
def test_defaults_round_trip_through_text(name: str) -> None:
    default = FIELDS[name].default
    text = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
    assert parse_text(name, text) == default


def test_bounds_are_inclusive_or_exclusive_as_specified() -> None:
    assert TrainConfig(dropout=0.0).dropout == 0.0
    with pytest.raises(ConfigError):
        TrainConfig(dropout=1.0)
    assert TrainConfig(lr=10).lr == 10.0
    with pytest.raises(ConfigError):
        TrainConfig(lr=0)
    assert TrainConfig(epochs=10000).epochs == 10000
    with pytest.raises(ConfigError):
        TrainConfig(epochs=10001)


def test_all_problems_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig(lr=math.nan, epochs=0, model="vit", batch_size=-1)
    fields = [p.split(":")[0] for p in info.value.problems]
    assert fields == ["model", "lr", "epochs", "batch_size"]
    assert "4 problems" in str(info.value)


def test_cross_field_checks() -> None:
    with pytest.raises(ConfigError, match="nesterov"):
        TrainConfig(optimizer="adam", nesterov=True)
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainConfig(loss="mse", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="fp16 needs a cuda"):
        TrainConfig(precision="fp16", device="cpu")
    with pytest.raises(ConfigError) as info:
        TrainConfig(data="custom")
    # custom_images is checked by the loader: a CSV of pixel rows needs no image folder.
    assert [p.split(":")[0] for p in info.value.problems] == ["custom_csv"]
    for data, needs in (("csv-pixels", "custom_csv"), ("image-folder", "custom_images")):
        with pytest.raises(ConfigError) as info:
            TrainConfig(data=data)
        assert info.value.problems == [f"{needs}: required when data is {data}"]


def test_text_parsing_is_forgiving_where_unambiguous() -> None:
    config = TrainConfig().with_text(
        {"loss": "Cross-Entropy", "hidden_sizes": "256, 128 64", "augment": "yes", "lr": " 3e-4 "}
    )
    assert config.loss == "cross_entropy"
    assert config.hidden_sizes == (256, 128, 64)
    assert config.augment is True
    assert config.lr == 3e-4


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_save_and_load_round_trip(tmp_path, suffix: str) -> None:
    config = TrainConfig(model="cnn", hidden_sizes=(64,), lr=0.01, augment=True, name="x1")
    path = tmp_path / f"c{suffix}"
    config.save(path)
    assert TrainConfig.load(path) == config


def test_config_file_may_be_partial_and_rejects_unknown_keys(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("lr = 0.01\nepochs = 3\n")
    assert TrainConfig.load(path) == TrainConfig(lr=0.01, epochs=3)
    path.write_text("learning_rate = 0.01\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'learning_rate' \(did you mean 'lr'"):
        TrainConfig.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("lr = ", "not valid TOML"),
        ('lr = "fast"', "lr: got 'fast'"),
        ("epochs = 2.5", "epochs: got 2.5"),
        ("augment = 1", "augment: got 1"),
        ("hidden_sizes = [512, true]", "hidden_sizes"),
        ("lr = nan", "lr: got nan"),
        ("lr = inf", "lr: got inf"),
        ("batch_size = 99999999999", "batch_size"),
    ],
)
def test_bad_config_files_name_the_file_and_problem(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content + "\n")
    with pytest.raises(ConfigError) as info:
        TrainConfig.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_json_config_that_is_not_a_table(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="expected a table"):
        TrainConfig.load(path)


def test_tutorial_preset_is_the_notes_setup() -> None:
    config = preset("tutorial")
    assert (config.model, config.hidden_sizes, config.activation) == ("mlp", (512, 512), "relu")
    assert (config.loss, config.optimizer, config.lr, config.momentum) == (
        "cross_entropy",
        "sgd",
        1e-3,
        0.0,
    )
    assert (config.batch_size, config.epochs, config.schedule) == (64, 5, "none")
    assert config.normalize is False and config.augment is False and config.dropout == 0.0
    assert set(PRESETS) >= {"default", "tutorial", "cnn", "quick"}
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("nope")
