from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_config import bad_texts

from engine.config import FIELDS
from engine.runs import Run, list_runs
from tui.cli import main

SMALL = [
    "--train-subset",
    "1000",
    "--test-subset",
    "200",
    "--hidden-sizes",
    "64",
    "--log-every",
    "5",
]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [(n, t) for n in FIELDS for t in bad_texts(n)[:4] + bad_texts(n)[-2:] if t != ""],
)
def test_bad_flag_values_exit_2_with_one_line(name: str, text: str, capsys) -> None:
    flag = "--" + name.replace("_", "-")
    # Booleans are --flag / --no-flag: any value after them is an unexpected argument.
    args = ["train", flag, text] if FIELDS[name].kind == "bool" else ["train", f"{flag}={text}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("fmnist-tui: error:")
    assert "Traceback" not in err


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path) -> None:
    cases = [
        ["train", "--lr", "abc", "--epochs", "0"],
        ["train", "--nope"],
        ["train", "--config", str(tmp_path / "missing.toml")],
        ["train", "--device", "cuda:3"],
        ["train", "--data-dir", str(tmp_path)],
        ["train", "--resume", "no-such-run", "--runs-dir", str(tmp_path)],
        ["predict", "no-such-run", "--runs-dir", str(tmp_path)],
        ["bench", "--batch-sizes", "x"],
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stdout == ""


def test_config_file_errors_name_the_file(tmp_path, capsys) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"lr": -1, "optimiser": "sgd"}')
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "optimiser" in err and "did you mean 'optimizer'" in err


def test_json_output_is_one_object_per_line_and_nothing_else(tmp_path) -> None:
    result = run_cli("train", "--json", "--epochs", "2", "--runs-dir", str(tmp_path), *SMALL)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "finished"
    assert kinds.count("epoch") == 2
    assert all("test_accuracy" in e for e in events if e["event"] == "epoch")


def test_plain_output_when_piped_is_one_line_per_epoch(tmp_path) -> None:
    result = run_cli("train", "--epochs", "2", "--runs-dir", str(tmp_path), *SMALL)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert lines[-1].startswith("finished: 2 epochs")
    assert "\r" not in result.stdout and "\x1b" not in result.stdout


def test_config_file_flags_and_preset_layer_in_order(tmp_path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text('optimizer = "adam"\nepochs = 1\nlr = 0.002\n')
    code = main(
        [
            "train",
            "--preset",
            "tutorial",
            "--config",
            str(config),
            "--lr",
            "0.003",
            "--runs-dir",
            str(tmp_path / "runs"),
            *SMALL,
        ]
    )
    assert code == 0
    [info] = list_runs(tmp_path / "runs")
    c = info.config
    assert (c.optimizer, c.epochs, c.lr, c.batch_size) == ("adam", 1, 0.003, 64)  # 64: tutorial


def test_sigint_saves_a_resumable_checkpoint_and_exits_130(tmp_path) -> None:
    import signal

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "train",
            "--json",
            "--epochs",
            "50",
            "--runs-dir",
            str(tmp_path),
            *SMALL,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training is under way
        if json.loads(line)["event"] == "epoch":
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    kinds = [json.loads(line)["event"] for line in out.splitlines()]
    assert "checkpoint" in kinds and kinds[-1] == "finished"
    [info] = list_runs(tmp_path)
    assert info.state == "interrupted" and info.resumable
    assert not Run(info.path).is_locked()  # the trainer let go of it as it exited
    done = run_cli(
        "train",
        "--resume",
        info.id,
        "--runs-dir",
        str(tmp_path),
        "--epochs",
        str(info.epochs_completed + 1),
    )
    assert done.returncode == 0, done.stderr
    assert Run(info.path).state() == "finished"


def test_resume_refuses_changed_settings(tmp_path, capsys) -> None:
    assert main(["train", "--resume", "x", "--lr", "0.1"]) == 2
    assert "only --epochs" in capsys.readouterr().err


def test_runs_and_predict(tmp_path, capsys) -> None:
    assert main(["train", "--epochs", "1", "--runs-dir", str(tmp_path), *SMALL]) == 0
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(tmp_path), "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["state"] == "finished" and 0 < row["best_accuracy"] <= 1
    assert main(["predict", row["id"], "--runs-dir", str(tmp_path), "--count", "5", "--json"]) == 0
    predictions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(predictions) == 5
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-3 for p in predictions)


def test_headless_commands_never_import_textual() -> None:
    code = (
        "import sys; from tui.cli import main; main(['runs', '--runs-dir', '/nonexistent']);"
        "assert 'textual' not in sys.modules, 'textual imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "command", [[], ["train"], ["runs"], ["predict"], ["bench"], ["attach"], ["export"]]
)
def test_help_of_every_command_prints(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: fmnist-tui" in capsys.readouterr().out
