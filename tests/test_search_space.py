"""The search space: the ``[search]`` table, its validation, and what it asks Optuna."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from engine.config import FIELDS, TrainConfig
from engine.errors import ConfigError
from engine.search_space import (
    SEARCHABLE,
    Choices,
    Range,
    SearchSpace,
    decode_params,
    encode_value,
    parse_search_text,
    read_search_table,
    search_text,
    write_config,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A space with one of each kind of entry.
MIXED = {
    "model": ["mlp", "cnn"],
    "hidden_sizes": [[256, 256], [512]],
    "dropout": {"low": 0.0, "high": 0.5},
    "optimizer": ["adamw", "sgd"],
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "step_size": {"low": 1, "high": 8, "log": True},
    "batch_size": [64, 128, 256],
    "augment": [True, False],
}


def test_default_space_is_the_issue_s() -> None:
    space = SearchSpace.default()
    assert space.params == {
        "dropout": Range(0.0, 0.5),
        "optimizer": Choices(("adamw", "sgd")),
        "lr": Range(1e-4, 1e-1, log=True),
        "weight_decay": Range(1e-6, 1e-2, log=True),
        "batch_size": Choices((64, 128, 256)),
    }
    assert space.is_log("lr") and space.is_log("weight_decay")
    assert not space.is_log("dropout") and not space.is_log("batch_size")
    assert not space.is_log("momentum")  # not searched at all


def test_lines_put_names_in_a_column() -> None:
    assert SearchSpace.default().lines() == [
        "dropout       uniform 0 .. 0.5",
        "optimizer     one of adamw, sgd",
        "lr            log-uniform 0.0001 .. 0.1",
        "weight_decay  log-uniform 1e-06 .. 0.01",
        "batch_size    one of 64, 128, 256",
    ]
    lines = SearchSpace.from_table(MIXED).lines()
    assert "hidden_sizes  one of [256, 256], [512]" in lines
    assert "step_size     log-integer 1 .. 8" in lines
    assert "augment       one of true, false" in lines


def test_params_follow_the_fields_order_and_normalise_values() -> None:
    space = SearchSpace.from_table(
        {"batch_size": [64], "lr": {"low": 1, "high": 2}, "hidden_sizes": [[8, 8]]}
    )
    assert list(space.params) == ["hidden_sizes", "lr", "batch_size"]
    lr = space.params["lr"]
    assert isinstance(lr, Range) and isinstance(lr.low, float)  # a float field's bounds
    assert space.params["hidden_sizes"] == Choices(((8, 8),))  # a list field's value: tuple


@pytest.mark.parametrize(
    "space", [SearchSpace.default(), SearchSpace.from_table(MIXED)], ids=["default", "mixed"]
)
def test_round_trips_through_dict_json_and_toml(space: SearchSpace) -> None:
    assert SearchSpace.from_table(space.to_dict()) == space
    assert SearchSpace.from_table(json.loads(json.dumps(space.to_dict()))) == space
    toml = space.to_toml()
    assert toml.startswith("[search]\n")
    assert SearchSpace.from_table(tomllib.loads(toml)["search"]) == space


def test_to_toml_reads_as_a_person_writes_it() -> None:
    toml = SearchSpace.default().to_toml()
    assert "lr = { low = 0.0001, high = 0.1, log = true }\n" in toml
    assert "dropout = { low = 0.0, high = 0.5 }\n" in toml
    assert 'optimizer = ["adamw", "sgd"]\n' in toml
    assert SearchSpace({}).to_toml() == ""


# (table, the field the problem names, a fragment of the problem)
BAD = [
    ({"learning_rate": [0.1]}, "'learning_rate'", "did you mean 'lr'?"),
    ({"lrr": [0.1]}, "'lrr'", "did you mean 'lr'?"),
    ({"bogus": [1]}, "'bogus'", "unknown setting; searchable: model,"),
    ({"seed": [1, 2]}, "seed", "cannot be searched (the trials share one seed"),
    ({"epochs": [1, 2]}, "epochs", "cannot be searched (each trial's length is the search's"),
    ({"data_dir": ["a"]}, "data_dir", "cannot be searched (it changes the data"),
    ({"device": ["cpu"]}, "device", "cannot be searched (it says where a run computes"),
    ({"runs_dir": ["a"]}, "runs_dir", "cannot be searched (it says where a run is kept)"),
    ({"lr": {"low": 0, "high": 1}}, "lr", "low 0 is refused; expected a number greater than 0"),
    ({"lr": {"low": 0.1, "high": 11}}, "lr", "high 11 is refused; expected a number greater"),
    ({"dropout": {"low": 0.1, "high": 1}}, "dropout", "high 1 is refused; expected a number at"),
    ({"batch_size": {"low": 1.5, "high": 8}}, "batch_size", "low 1.5 is refused; expected a who"),
    ({"lr": {"low": 0.1, "high": 0.01}}, "lr", "low 0.1 must be below high 0.01"),
    ({"lr": {"low": 0.1, "high": 0.1}}, "lr", "must be below high 0.1 (to fix the value, set lr"),
    ({"dropout": {"low": 0, "high": 0.5, "log": True}}, "dropout", "a log range needs low above"),
    ({"lr": {"low": 0.1, "high": 1, "log": "yes"}}, "lr", "log: got 'yes'; expected true or f"),
    ({"lr": {"low": 0.1, "high": 1, "step": 0.1}}, "lr", "unknown key 'step'; a range has low,"),
    ({"lr": {"low": 0.1}}, "lr", "a range needs high"),
    ({"optimizer": {"low": 1, "high": 2}}, "optimizer", "a range fits number fields only; list"),
    ({"augment": {"low": 0, "high": 1}}, "augment", "a range fits number fields only"),
    ({"hidden_sizes": {"low": 8, "high": 64}}, "hidden_sizes", "e.g. [[256, 256], [512, 512]]"),
    ({"batch_size": []}, "batch_size", "the list is empty; give at least one value, each a whole"),
    ({"batch_size": [0, 64]}, "batch_size", "0 in the list is refused; expected each value a wh"),
    ({"batch_size": [64, 64]}, "batch_size", "64 is listed twice"),
    ({"optimizer": ["adamw", "lion"]}, "optimizer", "'lion' in the list is refused; expected e"),
    ({"augment": [True, "no"]}, "augment", "'no' in the list is refused; expected each value t"),
    ({"hidden_sizes": [256, 512]}, "hidden_sizes", "256 in the list is refused"),
    ({"lr": 0.1}, "lr", "got 0.1; expected a range { low = …, high = … } (log = true for a"),
    ({"optimizer": "adamw"}, "optimizer", "got 'adamw'; expected a list of values, e.g. [\"sgd\""),
]


@pytest.mark.parametrize(("table", "field", "fragment"), BAD)
def test_every_problem_names_the_field_and_what_is_allowed(
    table: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_table(table, source="cfg.toml: [search]")
    problem = info.value.problems[0]
    assert problem.startswith(f"cfg.toml: [search] {field}: ")
    assert fragment in problem
    assert "\n" not in problem


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_table({"seed": [1], "lr": {"low": 1, "high": 0}, "model": ["x"]})
    assert [p.split(":")[0] for p in info.value.problems] == [
        "[search] seed",
        "[search] lr",
        "[search] model",
    ]


@pytest.mark.parametrize("table", [{}, [1, 2], "lr"])
def test_a_table_that_is_empty_or_not_a_table_is_refused(table: Any) -> None:
    with pytest.raises(ConfigError, match=r"^\[search\]: (no fields to search|expected a table)"):
        SearchSpace.from_table(table)


def test_only_fields_that_change_what_a_run_learns_are_searchable() -> None:
    for name in ("lr", "batch_size", "model", "hidden_sizes", "augment", "schedule"):
        assert name in SEARCHABLE
    for name in ("epochs", "seed", "device", "precision", "data", "val_fraction", "name"):
        assert name not in SEARCHABLE
    assert list(SEARCHABLE) == [name for name in FIELDS if name in SEARCHABLE]


def test_suggest_with_a_fixed_trial_gives_config_values() -> None:
    space = SearchSpace.from_table(MIXED)
    trial = optuna.trial.FixedTrial(
        {
            "model": "cnn",
            "hidden_sizes": encode_value("hidden_sizes", (256, 256)),
            "dropout": 0.25,
            "optimizer": "sgd",
            "lr": 0.01,
            "step_size": 3,
            "batch_size": 128,
            "augment": True,
        }
    )
    values = space.suggest(trial)
    assert values == {
        "model": "cnn",
        "hidden_sizes": (256, 256),
        "dropout": 0.25,
        "optimizer": "sgd",
        "lr": 0.01,
        "step_size": 3,
        "batch_size": 128,
        "augment": True,
    }
    config = TrainConfig.from_dict(values, base=TrainConfig(epochs=2))
    assert config.hidden_sizes == (256, 256) and config.epochs == 2


def test_suggest_in_a_real_study_stays_in_the_space() -> None:
    space = SearchSpace.from_table(MIXED)
    seen: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        seen.append(values)
        config = TrainConfig.from_dict(values)
        return config.lr * config.batch_size

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=25)
    assert len(seen) == 25
    for values in seen:
        assert 1e-4 <= values["lr"] <= 1e-1 and isinstance(values["lr"], float)
        assert 1 <= values["step_size"] <= 8 and isinstance(values["step_size"], int)
        assert values["batch_size"] in (64, 128, 256)
        assert values["hidden_sizes"] in ((256, 256), (512,))
        assert isinstance(values["augment"], bool)
    distributions = study.trials[0].distributions
    assert distributions["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert distributions["step_size"] == optuna.distributions.IntDistribution(1, 8, log=True)
    assert distributions["dropout"] == optuna.distributions.FloatDistribution(0.0, 0.5)
    # What Optuna stored turns back into a config.
    best = TrainConfig.from_dict(decode_params(study.best_params))
    assert best.hidden_sizes in ((256, 256), (512,))
    assert best.lr == study.best_params["lr"]


def test_grid_gives_the_stored_values_and_a_grid_sampler_tries_each_once() -> None:
    space = SearchSpace.from_table(
        {"hidden_sizes": [[64], [32, 32]], "optimizer": ["adamw", "sgd"], "batch_size": [64]}
    )
    grid = space.grid()
    assert grid == {
        "hidden_sizes": ["64", "32-32"],
        "optimizer": ["adamw", "sgd"],
        "batch_size": [64],
    }
    tried: list[tuple[Any, ...]] = []

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        tried.append((values["hidden_sizes"], values["optimizer"], values["batch_size"]))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    study.optimize(objective, n_trials=10)  # the grid stops the study after its 4 points
    assert sorted(tried, key=str) == sorted(
        itertools.product([(64,), (32, 32)], ["adamw", "sgd"], [64]), key=str
    )


def test_grid_names_every_field_that_is_a_range() -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.default().grid()
    [problem] = info.value.problems
    assert "grid" in problem and "dropout, lr, weight_decay are ranges" in problem
    with pytest.raises(ConfigError, match="lr is a range"):
        SearchSpace.from_table({"lr": {"low": 0.1, "high": 1}, "batch_size": [64]}).grid()


def test_decode_params_leaves_other_values_alone() -> None:
    assert decode_params({"conv_channels": "16-32", "lr": 0.1, "other": "1-2"}) == {
        "conv_channels": (16, 32),
        "lr": 0.1,
        "other": "1-2",
    }


TOML_WITH_SEARCH = """\
epochs = 3
lr = 0.01

[search]
lr = { low = 1e-4, high = 1e-1, log = true }
batch_size = [64, 128, 256]
model = ["mlp", "cnn"]
dropout = { low = 0.0, high = 0.5 }
"""


def test_a_config_file_with_a_search_table_loads_and_the_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(TOML_WITH_SEARCH)
    config = TrainConfig.load(path)
    assert config.epochs == 3 and config.lr == 0.01
    space = read_search_table(path)
    assert space is not None
    assert list(space.params) == ["model", "dropout", "lr", "batch_size"]
    assert space.params["lr"] == Range(1e-4, 1e-1, log=True)


def test_a_json_config_with_a_search_key_works_alike(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"epochs": 2, "search": SearchSpace.default().to_dict()}))
    assert TrainConfig.load(path).epochs == 2
    assert read_search_table(path) == SearchSpace.default()


def test_a_saved_config_plus_space_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    space = SearchSpace.from_table(MIXED)
    path.write_text(TrainConfig(lr=0.02).to_toml() + "\n" + space.to_toml())
    assert TrainConfig.load(path).lr == 0.02
    assert read_search_table(path) == space


def test_a_file_without_a_search_table_has_no_space(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text("epochs = 3\n")
    assert read_search_table(path) is None


def test_problems_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text("[search]\nlr = { low = 0, high = 1 }\nseeds = [1]\n")
    with pytest.raises(ConfigError) as info:
        read_search_table(path)
    assert [p.split(": [search] ")[0] for p in info.value.problems] == [str(path)] * 2
    assert "did you mean 'seed'?" in info.value.problems[1]
    # Training does not look at the table, even a bad one.
    assert TrainConfig.load(path) == TrainConfig()
    path.write_text("[search\n")
    with pytest.raises(ConfigError, match=f"^{path}: not valid TOML"):
        read_search_table(path)
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'none.toml'}: cannot read config file"):
        read_search_table(tmp_path / "none.toml")


@pytest.mark.parametrize(
    ("name", "text", "param"),
    [
        ("lr", "1e-4..0.1 log", Range(1e-4, 0.1, log=True)),
        ("lr", " 1e-4 .. 1e-1 LOG ", Range(1e-4, 0.1, log=True)),
        ("dropout", "0..0.5", Range(0.0, 0.5)),
        ("batch_size", "16..256 log", Range(16, 256, log=True)),
        ("batch_size", "64, 128,256", Choices((64, 128, 256))),
        ("lr", "0.001, 0.01", Choices((0.001, 0.01))),
        ("optimizer", "AdamW, sgd", Choices(("adamw", "sgd"))),
        ("activation", "leaky-relu | gelu", Choices(("leaky_relu", "gelu"))),
        ("augment", "yes, no", Choices((True, False))),
        ("hidden_sizes", "256, 256 | 512", Choices(((256, 256), (512,)))),
        ("hidden_sizes", "64 128", Choices(((64, 128),))),
    ],
)
def test_typed_entries_read_as_ranges_and_lists(name: str, text: str, param: Any) -> None:
    assert parse_search_text(name, text) == param
    # ... and what search_text writes reads back the same.
    assert parse_search_text(name, search_text(name, param)) == param


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("lr", "0..1", "lr: low 0 is refused; expected a number greater than 0"),
        ("lr", "abc..1", "lr: low 'abc' is refused"),
        ("lr", "0.001..", "lr: got '0.001..'; a range reads LOW..HIGH, with log after it"),
        ("lr", "", "lr: the list is empty"),
        ("batch_size", "1.5..8", "batch_size: low 1.5 is refused; expected a whole number"),
        ("batch_size", "64, x", "batch_size: 'x' in the list is refused"),
        ("optimizer", "adamw..sgd", "optimizer: 'adamw..sgd' in the list is refused"),
        ("seed", "1, 2", "seed: cannot be searched"),
        ("bogus", "1", "'bogus': unknown setting"),
    ],
)
def test_typed_entries_refused_say_why(name: str, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_search_text(name, text, source="search")
    [problem] = info.value.problems
    assert problem.startswith("search ") and fragment in problem


def test_search_text_is_what_a_person_types() -> None:
    space = SearchSpace.from_table(MIXED)
    assert [search_text(n, p) for n, p in space.params.items()] == [
        "mlp, cnn",
        "256, 256 | 512",
        "0..0.5",
        "adamw, sgd",
        "0.0001..0.1 log",
        "1..8 log",
        "64, 128, 256",
        "true, false",
    ]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_write_config_saves_the_settings_and_the_table(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cfg{suffix}"
    config = TrainConfig(lr=0.02, hidden_sizes=(64,))
    space = SearchSpace.from_table(MIXED)
    write_config(path, config, space)
    assert TrainConfig.load(path) == config
    assert read_search_table(path) == space
    assert not [p for p in tmp_path.iterdir() if p != path]  # no temporary file left
    write_config(path, config, None)
    assert TrainConfig.load(path) == config
    assert read_search_table(path) is None
    with pytest.raises(OSError):
        write_config(tmp_path / "missing" / f"cfg{suffix}", config, space)
