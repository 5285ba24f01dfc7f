"""Your own model: ``--model path/to/file.py:factory`` and ``--model package.module:factory``.

The factories here write a marker file when their module is imported, so a test can
prove that listing, refusing or reading a run never ran the user's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.config import FIELDS, TrainConfig, parse_text
from engine.errors import ConfigError, ModelError
from engine.inference import Predictor
from engine.models import summary
from engine.runs import Run, list_runs
from engine.search_space import Choices, read_search_table
from tui.cli import main

SMALL = ["--train-subset", "300", "--test-subset", "100", "--log-every", "5", "--device", "cpu"]

FACTORY = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, image_shape, num_classes):
        super().__init__()
        c, h, w = image_shape
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 16), nn.ReLU())
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def factory(image_shape, num_classes):
    return Tiny(image_shape, num_classes)


def raises(image_shape, num_classes):
    raise RuntimeError("no GPU budget for this one")


def not_a_module(image_shape, num_classes):
    return "a string"


def returns_int(image_shape, num_classes):
    return 42


def wrong_shape(image_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(image_shape[1] * image_shape[2], 3))


def bad_forward(image_shape, num_classes):
    return nn.Linear(5, num_classes)


NOT_CALLABLE = 3
"""


def write_factory(folder: Path, name: str = "nets.py") -> tuple[Path, Path]:
    """A factory file in ``folder`` and the marker its import writes."""
    marker = folder / f"{name}.imported"
    path = folder / name
    path.write_text(FACTORY.format(marker=str(marker)))
    return path, marker


def single_run(runs: Path) -> Run:
    [info] = list_runs(runs)
    return Run(info.path)


def test_the_model_field_takes_registry_names_and_factory_references() -> None:
    assert parse_text("model", " CNN ") == "cnn"
    for reference in ("nets.py:factory", "sub/dir/My Nets.py:make_net", "pkg.mod:factory"):
        assert parse_text("model", reference) == reference
        assert TrainConfig(model=reference).model == reference
    for bad in ("vit", "pkg.mod", "nets.py", "nets.py:", "pkg mod:f", "nets.py:1f", "a..b:f"):
        with pytest.raises(ConfigError) as info:
            parse_text("model", bad)
        assert info.value.problems == [
            f"model: got {bad!r}; expected {FIELDS['model'].allowed()}"
        ], bad
    assert "path/to/file.py:factory" in FIELDS["model"].allowed()
    # A relative file is recorded absolutely: a run resumes from any folder.
    config = TrainConfig(model="nets.py:factory").with_absolute_paths()
    assert config.model == f"{os.path.abspath('nets.py')}:factory"


def test_the_summary_names_a_factory_and_the_sizes_each_builtin_model_is_built_from() -> None:
    common = {"hidden_sizes": (64,), "conv_channels": (8, 16), "activation": "gelu"}
    rest = "cross_entropy · adamw lr 0.001 · batch 128 · 5 epochs"
    settings = {**common, "lr": 1e-3, "batch_size": 128, "epochs": 5, "optimizer": "adamw"}
    expected = {
        "mlp": "mlp [64] gelu",
        "cnn": "cnn conv [8-16] fc [64] gelu",
        "resnet": "resnet conv [8-16] gelu",  # its head has no hidden layers
        # A factory's sizes and activation are its own: only its name is shown.
        "/tmp/nets.py:small_cnn": "small_cnn",
        "pkg.mod:make_net": "make_net",
    }
    for model, shown_as in expected.items():
        assert TrainConfig(model=model, **settings).summary() == f"{shown_as} · {rest}"


def test_a_search_lists_factories_without_importing_them(tmp_path: Path) -> None:
    path, marker = write_factory(tmp_path)
    space = tmp_path / "space.toml"
    space.write_text(f'[search]\nmodel = ["mlp", "{path}:factory"]\n')
    table = read_search_table(space)
    assert table is not None
    assert table.params["model"] == Choices(("mlp", f"{path}:factory"))
    assert not marker.exists()


def test_a_search_refuses_a_factory_before_anything_starts(tmp_path: Path, capsys) -> None:
    path, marker = write_factory(tmp_path)
    runs = tmp_path / "runs"
    space = tmp_path / "space.toml"
    space.write_text(f'[search]\nmodel = ["mlp", "{path}:factory"]\n')
    for extra in (["--config", str(space)], ["--model", f"{path}:factory"]):
        code = main(["search", "--trials", "2", "--runs-dir", str(runs), *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"model {path}:factory: a search trains the registry's models" in err
        assert f"fmnist-tui train --model {path}:factory" in err
    assert not marker.exists() and not runs.exists()


def test_a_config_file_naming_a_factory_is_never_imported(tmp_path: Path, capsys) -> None:
    path, marker = write_factory(tmp_path)
    config = tmp_path / "my.toml"
    config.write_text(f'model = "{path}:factory"\nruns_dir = "{tmp_path / "runs"}"\n')
    assert main(["train", "--config", str(config), *SMALL]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"a model from your code ({path}:factory); pass --model {path}:factory" in err
    assert not marker.exists() and not (tmp_path / "runs").exists()
    with pytest.raises(ModelError, match="pass --model"):
        summary(TrainConfig(model=f"{path}:factory"))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("factory", "reason"),
    [
        ("missing.py:factory", "there is no file"),
        ("nets.py:absent", "defines no absent"),
        ("nets.py:NOT_CALLABLE", "is not a function (its type is int)"),
        ("nets.py:raises", "the factory raised RuntimeError: no GPU budget for this one"),
        ("nets.py:not_a_module", "returned str 'a string', not a torch.nn.Module"),
        ("nets.py:returns_int", "returned int 42, not a torch.nn.Module"),
        ("nets.py:wrong_shape", "gave torch.float32 2 x 3; expected float 2 x 10 logits"),
        ("nets.py:bad_forward", "its forward on float 2 x 1 x 28 x 28 input raised"),
        ("broken.py:factory", "importing"),
    ],
)
def test_a_bad_factory_exits_2_with_the_reason(
    tmp_path: Path, capsys, factory: str, reason: str
) -> None:
    write_factory(tmp_path)
    (tmp_path / "broken.py").write_text("def factory(:\n")
    reference = str(tmp_path / factory)
    runs = tmp_path / "runs"
    code = main(["train", "--model", reference, "--epochs", "1", "--runs-dir", str(runs), *SMALL])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"fmnist-tui: error: model {reference}: ") and reason in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list_runs(runs) == []  # refused before a run folder is made


def test_own_model_trains_resumes_predicts_and_exports_only_when_named(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    import torch

    path, marker = write_factory(tmp_path)
    reference = f"{path}:factory"
    runs = tmp_path / "runs"
    base = ["--runs-dir", str(runs)]
    assert main(["train", "--model", reference, "--epochs", "1", *base, *SMALL]) == 0
    assert marker.exists()
    run = single_run(runs)
    assert "-factory-" in run.id
    assert run.config().model == reference
    source = json.loads((run.path / "model_source.json").read_text())
    assert source == {
        "reference": reference,
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }

    # The file changes; from here on nothing may import it until --model names it.
    path.write_text(path.read_text() + "\n# tuned\n")
    marker.unlink()
    capsys.readouterr()
    assert main(["runs", *base, "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == run.id and row["state"] == "finished"
    assert main(["runs", *base]) == 0
    listed = capsys.readouterr().out.splitlines()[-1]
    assert listed.startswith(run.id) and listed.endswith(
        "  factory · cross_entropy · adamw lr 0.001 · batch 128 · 1 epoch"
    )
    refusal = f"run {run.id} trains a model from your code ({reference}); pass --model {reference}"
    for command in (
        ["train", "--resume", run.id, "--epochs", "2", *base],
        ["predict", run.id, "--count", "2", *base],
        ["export", run.id, *base],
        ["train", "--resume", run.id, "--epochs", "2", "--model", f"{path}:raises", *base],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert refusal in err and err.count("\n") == 1, err
    with pytest.raises(ModelError, match="pass --model"):
        Predictor.from_run(run)
    assert not marker.exists()
    assert main(["train", "--resume", run.id, "--model", "mlp", "--epochs", "2", *base]) == 2
    assert "--model here names your own model's factory" in capsys.readouterr().err
    assert run.read_status()["epochs_completed"] == 1  # nothing changed

    # Named again (a relative path works too): it resumes, says the file changed.
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--resume", run.id, "--epochs", "2", "--model", "nets.py:factory", *base])
    out = capsys.readouterr().out
    assert code == 0 and marker.exists()
    assert f"{path} changed since run {run.id} recorded it" in out
    assert run.read_status()["epochs_completed"] == 2
    source = json.loads((run.path / "model_source.json").read_text())
    assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [change["until_epoch"] for change in source["changes"]] == [1]

    assert main(["predict", run.id, "--count", "3", "--json", "--model", reference, *base]) == 0
    predictions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(predictions) == 3
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in predictions)

    assert main(["export", run.id, "--format", "state_dict", "--model", reference, *base]) == 0
    weights = torch.load(run.path / "export" / "model_state_dict.pt", weights_only=True)
    predictor = Predictor.from_run(run, model_factory=reference)
    assert predictor.note == ""  # the file is the one the run now records
    # The exported state_dict is the factory's own module's: it loads into a fresh one.
    fresh = predictor.model.__class__(image_shape=(1, 28, 28), num_classes=10)
    fresh.load_state_dict(weights)
    images = torch.zeros(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(images), predictor.model(images))

    layers = summary(run.config(), model_factory=reference)
    assert [(layer.name, layer.parameters) for layer in layers.layers][-1] == ("head", 170)
    assert layers.total_parameters == 784 * 16 + 16 + 170

    # The file changes so that the weights no longer fit: the refusal says it changed.
    recorded = source["sha256"]
    text = path.read_text()  # only the width: the folder's name may hold "16" too
    assert text.count("w, 16)") == 1 and text.count("Linear(16,") == 1
    path.write_text(text.replace("w, 16)", "w, 24)").replace("Linear(16,", "Linear(24,"))
    now = hashlib.sha256(path.read_bytes()).hexdigest()
    changed = (
        f"{path} changed since run {run.id} recorded it (sha256 {recorded[:12]}… then, "
        f"{now[:12]}… now), the likely cause"
    )
    for command in (
        ["train", "--resume", run.id, "--epochs", "3", "--model", reference, *base],
        ["predict", run.id, "--count", "2", "--model", reference, *base],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert (
            "its weights do not fit the model" in err and changed in err and err.count("\n") == 1
        ), err
    assert run.read_status()["epochs_completed"] == 2  # nothing changed


def test_a_module_reference_trains_in_a_subprocess_and_lists_without_import(
    tmp_path: Path, monkeypatch
) -> None:
    package = tmp_path / "lib" / "mymodels"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    path, marker = write_factory(package, "nets.py")
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "lib")}
    command = [sys.executable, "-m", "tui.cli"]
    train = [*command, "train", "--model", "mymodels.nets:factory", "--epochs", "1", *SMALL]
    done = subprocess.run(
        [*train, "--runs-dir", str(runs), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    run = single_run(runs)
    assert run.config().model == "mymodels.nets:factory"
    source = json.loads((run.path / "model_source.json").read_text())
    assert source["file"] == str(path) and source["reference"] == "mymodels.nets:factory"

    marker.unlink()
    listed = subprocess.run(
        [*command, "runs", "--runs-dir", str(runs), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)["id"] == run.id
    assert not marker.exists()

    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    predictor = Predictor.from_run(run, model_factory="mymodels.nets:factory")
    assert marker.exists()
    assert predictor.predict(np.zeros((2, 28, 28), np.uint8)).classes.shape == (2,)


async def test_the_app_lists_a_factory_run_without_importing_and_loads_it_when_named(
    tmp_path: Path,
) -> None:
    from pane_helpers import shown, wait_for
    from textual.widgets import Select

    from engine.trainer import Trainer
    from helpers import synthetic
    from tui.app import FmnistApp
    from tui.screens.inspect import InspectPane
    from tui.widgets.config_form import ConfigForm
    from tui.widgets.runs_table import RunsTable

    path, marker = write_factory(tmp_path)
    reference = f"{path}:factory"
    runs = tmp_path / "runs"
    data = synthetic(256, 64)
    config = TrainConfig(model=reference, epochs=1, batch_size=64, runs_dir=str(runs), device="cpu")
    Trainer(config, data=data, model_factory=reference).fit()
    run = single_run(runs)
    # Edited (another SHA-256): an import from here on runs the file again.
    path.write_text(path.read_text() + "\n# edited\n")
    marker.unlink()

    app = FmnistApp(TrainConfig(epochs=1, device="cpu"), runs_dir=str(runs), data=data)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert [str(cell) for cell in table.get_row(run.id)][3] == "factory"
        await pilot.press("5")
        header = app.query_one("#inspect-header")
        await wait_for(pilot, lambda: "Cannot inspect" in shown(header))
        said = " ".join(shown(header).split())
        assert f"run {run.id} trains a model from your code" in said, said
    assert not marker.exists()

    named = FmnistApp(
        TrainConfig(epochs=1, device="cpu"),
        runs_dir=str(runs),
        data=data,
        model_factory=reference,
    )
    async with named.run_test(size=(120, 40)) as pilot:
        # The form offers the factory (a value it does not offer would be refused).
        named.query_one("#field-model", Select).value = reference
        form = named.query_one(ConfigForm)
        await wait_for(pilot, lambda: form.config is not None and form.config.model == reference)
        await pilot.press("5")
        pane = named.query_one(InspectPane)
        await wait_for(pilot, lambda: pane.result is not None)
    assert marker.exists()
