"""The CUDA check: ``scripts/gpu_check.sh`` runs this with the tree on ``PYTHONPATH``.

Each part runs ``python -m tui.cli ...`` (the interpreter running this file) from a scratch
folder, or measures in this process, and writes ``OUT/NN-part.json`` as soon as it ends:
its figures, ``status`` (pass, fail, skipped, not available or unverified), ``reason``
where not pass, and ``seconds``. A part whose JSON exists is not run again (delete the
file to redo it). ``OUT/summary.json`` lists every part at the end; ``OUT/logs/`` holds
each command's stderr. The parts:

1. ``env``: torch, CUDA, the GPUs, bf16 support, nvidia-ml-py, the data folder.
2. ``mlp``: the default MLP on cuda at auto precision: epoch time and samples/s from
   ``train --json``, ``bench --to 0.88`` and ``--to 0.92``, and the bf16 bare loop
   (``engine.bench.bare_loop``) on the same GPU.
3. ``cnn``: the same for ``--preset cnn``.
4. ``sync``: short runs under ``FMNIST_SYNC_CHECK=1`` (``set_sync_debug_mode("error")``
   outside logging steps and epoch ends) must finish: no host sync per batch.
5. ``bf16_parity``: fp32 and bf16 runs of one config and seed, their test accuracies.
6. ``resume``: under ``FMNIST_DETERMINISTIC=1`` and ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, a
   run stopped mid-epoch (SIGINT) and resumed against an uninterrupted one: the final
   weights bitwise (``torch.equal``), every epoch's figures exactly (the training loss,
   whose float32 sums the stop groups differently, within 1e-6 relative).
7. ``telemetry``: ``fmnist-tui gpus --json`` read back against torch's view.
8. ``ddp``: with two GPUs or more a 2-rank NCCL run; with one, NCCL on two GPUs is
   recorded as unverified.

``--dry-run`` runs the same parts on the CPU with small sizes (a train subset, one epoch,
a low ``--to``), with textual, optuna and plotext made unimportable here and in every
command, to prove the plumbing on a machine without a GPU; the parts that need CUDA
(sync, telemetry against torch, NCCL) record why they were skipped.

Exit status: 0 when no part failed (and none was left for want of time), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TREE = Path(__file__).resolve().parent.parent
BLOCKED = ("textual", "optuna", "plotext")
PARTS = ("env", "mlp", "cnn", "sync", "bf16_parity", "resume", "telemetry", "ddp")
# Seconds the whole check may take (the shell script's ``timeout`` is a little longer),
# and the most one part may take.
DEFAULT_SECONDS = 280.0
PART_SECONDS = 120.0
# Seconds kept back at the end for the summary.
RESERVE = 8.0
TRAIN_LOSS_TOLERANCE = 1e-6  # relative, resumed against uninterrupted
PARITY_TOLERANCE = 0.01  # |bf16 - fp32| test accuracy, on cuda
TARGETS = (0.88, 0.92)
DRY_TARGET = 0.3
DRY_SUBSET = 1000  # training images per dry-run command

SITECUSTOMIZE = f'''"""scripts/gpu_check.py --dry-run: {", ".join(BLOCKED)} cannot be imported."""
import sys


class _Blocked:
    names = {BLOCKED!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (blocked by the GPU check's dry run)", name=name
            )
        return None


sys.meta_path.insert(0, _Blocked())
'''


class OutOfTime(Exception):
    """The check's time ran out before this part could finish."""


class Check:
    """The state the parts share: where results and scratch files go, the interpreter and
    environment commands run with, the deadline, and the dry-run switch."""

    def __init__(self, out: Path, dry_run: bool, seconds: float) -> None:
        self.out = out
        self.dry_run = dry_run
        self.deadline = time.monotonic() + seconds
        self.scratch = Path(tempfile.mkdtemp(prefix="fmnist-gpu-check-"))
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(TREE), self.env.get("PYTHONPATH", "")) if p
        )
        self.env.pop("FMNIST_SYNC_CHECK", None)
        self.env.pop("FMNIST_DETERMINISTIC", None)
        if dry_run:
            blocker = self.scratch / "blocker"
            blocker.mkdir()
            (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
            self.env["PYTHONPATH"] = os.pathsep.join((str(blocker), self.env["PYTHONPATH"]))
            exec(compile(SITECUSTOMIZE, "sitecustomize", "exec"), {})
        self.device = "cpu" if dry_run else "cuda"
        self.runs = 0

    def remaining(self) -> float:
        """Seconds left before the summary must be written."""
        return self.deadline - time.monotonic() - RESERVE

    def limit(self) -> float:
        """The timeout for the next command: what is left, at most ``PART_SECONDS``."""
        left = self.remaining()
        if left < 5:
            raise OutOfTime(f"{left:.0f} s left")
        return min(left, PART_SECONDS)

    def runs_dir(self) -> Path:
        """A fresh runs folder in the scratch folder."""
        self.runs += 1
        path = self.scratch / f"runs-{self.runs}"
        path.mkdir()
        return path

    def sizes(self, **gpu: str) -> list[str]:
        """The flags that set the size of a training command: ``gpu``'s values on cuda
        (``epochs="3"`` -> ``--epochs 3``), a subset and one epoch in the dry run."""
        if self.dry_run:
            values = {"epochs": "1", "train_subset": str(DRY_SUBSET), "test_subset": "500"}
            values.update({k: v for k, v in gpu.items() if k in ("batch_size", "log_every")})
        else:
            values = dict(gpu)
        flags = []
        for key, value in values.items():
            flags += [f"--{key.replace('_', '-')}", value]
        return flags

    def command(self, args: list[str], name: str, extra_env: dict[str, str] | None = None) -> Cmd:
        """Run ``python -m tui.cli ARGS`` to its end; stderr to ``logs/NAME.log``."""
        cmd = Cmd(self, args, name, extra_env)
        cmd.wait()
        return cmd


class Cmd:
    """One ``python -m tui.cli`` command: its stdout lines (JSON events or objects, as
    parsed; other lines as text), exit status and stderr's end."""

    def __init__(
        self, check: Check, args: list[str], name: str, extra_env: dict[str, str] | None
    ) -> None:
        self.args = args
        self.log = check.logs / f"{name}.log"
        self.timeout = check.limit()
        env = dict(check.env, **(extra_env or {}))
        self._stderr = open(self.log, "wb")  # noqa: SIM115  # closed in wait()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args],
            cwd=check.scratch,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[Any] = []
        self.returncode: int | None = None
        self.timed_out = False
        # Killed past its timeout even while it prints nothing (a hung collective).
        self._watchdog = threading.Timer(self.timeout, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        if self.proc.poll() is None:
            self.timed_out = True
            self.proc.kill()

    def events(self) -> Iterator[Any]:
        """Each stdout line as it comes, parsed as JSON where it is (kept in ``lines``)."""
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                line: Any = json.loads(raw)
            except ValueError:
                line = raw.rstrip("\n")
            self.lines.append(line)
            yield line

    def wait(self) -> None:
        """Read the rest of stdout and wait for the exit (killed past its timeout)."""
        for _line in self.events():
            pass
        self.returncode = self.proc.wait()
        self._watchdog.cancel()
        self._stderr.close()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The JSON events of ``kind`` ("epoch", "finished", ...)."""
        return [e for e in self.lines if isinstance(e, dict) and e.get("event") == kind]

    def json_object(self) -> dict[str, Any] | None:
        """The last stdout line that is a JSON object."""
        found = [e for e in self.lines if isinstance(e, dict)]
        return found[-1] if found else None

    def problem(self) -> str | None:
        """Why the command counts as failed (None: it did not)."""
        if self.timed_out:
            return f"timed out after {self.timeout:.0f} s: {self.describe()}"
        failed = self.of("failed")
        if failed:
            return f"run failed: {failed[-1].get('reason')} ({self.describe()})"
        if self.returncode != 0:
            return f"exit {self.returncode}: {self.describe()}: {self.stderr_tail()}"
        return None

    def describe(self) -> str:
        return "tui.cli " + " ".join(self.args)

    def stderr_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])


# --- the parts -----------------------------------------------------------------------


def part_env(check: Check) -> dict[str, Any]:
    """torch and CUDA versions, the GPUs with bf16 support, nvidia-ml-py, the data."""
    import torch

    record: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "nvidia_ml_py": _version("nvidia-ml-py"),
        "pynvml_importable": importlib.util.find_spec("pynvml") is not None,
        "torchvision": _version("torchvision"),
        "importable": {name: _importable(name) for name in BLOCKED},
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "fmnist_data": os.environ.get("FMNIST_DATA"),
    }
    gpus = []
    if torch.cuda.is_available():
        record["cudnn"] = torch.backends.cudnn.version()  # type: ignore[no-untyped-call]
        record["bf16_supported"] = torch.cuda.is_bf16_supported()
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "cuda": i,
                    "name": props.name,
                    "capability": f"{props.major}.{props.minor}",
                    "memory_bytes": props.total_memory,
                    "multiprocessors": props.multi_processor_count,
                }
            )
    record["gpus"] = gpus
    from engine.data import load_fashion_mnist

    data = load_fashion_mnist(None)
    record["data"] = {
        "train": len(data.train),
        "test": len(data.test),
        "folder": str(data.source.path),
    }
    leaked = [name for name, ok in record["importable"].items() if ok]
    if check.dry_run and leaked:
        return _fail(record, f"the dry run could still import {', '.join(leaked)}")
    if not check.dry_run and not gpus:
        return _fail(record, "torch sees no CUDA device")
    return _pass(record)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def part_mlp(check: Check) -> dict[str, Any]:
    """The default MLP: train, bench --to, bf16 bare loop."""
    return _model_part(check, [])


def part_cnn(check: Check) -> dict[str, Any]:
    """The CNN preset: train, bench --to, bf16 bare loop."""
    return _model_part(check, ["--preset", "cnn"])


def _model_part(check: Check, preset: list[str]) -> dict[str, Any]:
    name = preset[-1] if preset else "mlp"
    device = ["--device", check.device, "--precision", "auto"]
    train = check.command(
        ["train", "--json", *preset, *device, *check.sizes(), "--runs-dir", str(check.runs_dir())],
        f"{name}-train",
    )
    record: dict[str, Any] = {"train": _train_figures(train)}
    problems = [p for p in [train.problem()] if p]
    record["bench_to"] = []
    # The dry run proves the plumbing once: one low target, for the MLP only.
    targets = TARGETS if not check.dry_run else (DRY_TARGET,) if not preset else ()
    for target in targets:
        bench = check.command(
            ["bench", "--to", str(target), "--json", *preset, *device, *check.sizes()],
            f"{name}-bench-to-{target}",
        )
        figures = bench.json_object()
        # Exit 1 with a JSON answer: the target was not reached, a figure, not a failure.
        if figures is None or bench.timed_out or bench.returncode not in (0, 1):
            problems.append(bench.problem() or f"bench --to {target}: no JSON answer")
        record["bench_to"].append(figures or {"target": target, "error": bench.problem()})
    if check.dry_run:
        record["bench_to"] += [{"target": t, "skipped": "dry run"} for t in TARGETS[len(targets) :]]
    record["bare_bf16"] = _bare_loop(check, preset)
    engine_rate = record["train"].get("samples_per_second")
    bare_rate = record["bare_bf16"].get("samples_per_second")
    if engine_rate and bare_rate:
        record["engine_vs_bare_bf16"] = round(engine_rate / bare_rate, 3)
    return _fail(record, "; ".join(problems)) if problems else _pass(record)


def _train_figures(cmd: Cmd) -> dict[str, Any]:
    """Per-epoch time, samples/s and accuracy of a ``train --json`` command; the medians
    leave out the first epoch (warm-up) when there are more."""
    epochs = [
        {
            "epoch": e["epoch"],
            "seconds": round(e["epoch_seconds"], 3),
            "samples_per_second": round(e["samples_per_second"]),
            "test_accuracy": e["test_accuracy"],
            "memory_bytes": e.get("memory_bytes"),
        }
        for e in cmd.of("epoch")
    ]
    started = cmd.of("run_started")
    steady = epochs[1:] or epochs
    figures: dict[str, Any] = {
        "command": cmd.describe(),
        "exit": cmd.returncode,
        "wall_seconds": round(cmd.seconds, 2),
        "epochs": epochs,
    }
    if started:
        figures["device"] = started[0].get("device")
        figures["precision"] = started[0]["config"].get("precision")
        figures["batch_size"] = started[0]["config"].get("batch_size")
        figures["train_size"] = started[0].get("train_size")
    if steady:
        figures["epoch_seconds"] = statistics.median(e["seconds"] for e in steady)
        figures["samples_per_second"] = round(
            statistics.median(e["samples_per_second"] for e in steady)
        )
        figures["final_test_accuracy"] = epochs[-1]["test_accuracy"]
    return figures


def _bare_loop(check: Check, preset: list[str]) -> dict[str, Any]:
    """The bench's bf16 bare loop with the preset's model, optimiser and batch size, in this
    process on the same device: the median of three epochs (one, of about 0.5 s, in the
    dry run)."""
    from engine.bench import bare_loop
    from engine.config import TrainConfig
    from engine.data import load_fashion_mnist
    from engine.presets import PRESETS

    values = dict(PRESETS[preset[-1] if preset else "default"], device=check.device)
    config = TrainConfig.from_dict(values)
    data = load_fashion_mnist(None)
    if check.dry_run:
        data = data.subset(DRY_SUBSET, 0, seed=0)
    rates = []
    repeats, seconds = (1, 0.5) if check.dry_run else (3, float("inf"))
    for _ in range(repeats):
        check.limit()
        rates.append(bare_loop(config, "bf16", data=data, seconds=seconds))
    _release_cuda()
    return {
        "batch_size": config.batch_size,
        "samples": len(data.train),
        "samples_per_second": round(statistics.median(rates)),
        "repeats": [round(r) for r in rates],
    }


def _release_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def part_sync(check: Check) -> dict[str, Any]:
    """Short runs under FMNIST_SYNC_CHECK=1: a host sync per batch fails them."""
    if check.dry_run:
        return _skip({}, "dry run: FMNIST_SYNC_CHECK only acts on CUDA")
    record: dict[str, Any] = {"runs": []}
    problems = []
    for name, flags in (
        ("mlp", []),
        ("cnn-augment", ["--preset", "cnn", "--augment"]),
    ):
        cmd = check.command(
            [
                "train",
                "--json",
                *flags,
                "--device",
                "cuda",
                "--epochs",
                "1",
                "--train-subset",
                "20000",
                "--runs-dir",
                str(check.runs_dir()),
            ],
            f"sync-{name}",
            {"FMNIST_SYNC_CHECK": "1"},
        )
        problem = cmd.problem()
        record["runs"].append(
            {"config": name, "exit": cmd.returncode, "finished": bool(cmd.of("finished"))}
            | ({"problem": problem} if problem else {})
        )
        if problem:
            problems.append(f"{name}: {problem}")
    return _fail(record, "; ".join(problems)) if problems else _pass(record)


def part_bf16_parity(check: Check) -> dict[str, Any]:
    """fp32 and bf16 runs of one config and seed: the test accuracy difference."""
    record: dict[str, Any] = {"tolerance": PARITY_TOLERANCE, "configs": []}
    problems = []
    for name, flags in (("mlp", []), ("cnn", ["--preset", "cnn"])):
        if check.dry_run and flags:
            record["configs"].append({"config": name, "skipped": "dry run"})
            continue
        accuracies = {}
        for precision in ("fp32", "bf16"):
            cmd = check.command(
                [
                    "train",
                    "--json",
                    *flags,
                    "--device",
                    check.device,
                    "--precision",
                    precision,
                    "--seed",
                    "0",
                    *check.sizes(epochs="2"),
                    "--runs-dir",
                    str(check.runs_dir()),
                ],
                f"parity-{name}-{precision}",
            )
            problem = cmd.problem()
            if problem:
                problems.append(f"{name} {precision}: {problem}")
                continue
            accuracies[precision] = [e["test_accuracy"] for e in cmd.of("epoch")]
        entry: dict[str, Any] = {"config": name, "test_accuracy": accuracies}
        if len(accuracies) == 2:
            diff = accuracies["bf16"][-1] - accuracies["fp32"][-1]
            entry["bf16_minus_fp32"] = round(diff, 4)
            # On the CPU's emulated bf16 with one small epoch the figure means little.
            if not check.dry_run and abs(diff) > PARITY_TOLERANCE:
                problems.append(f"{name}: bf16 - fp32 = {diff:+.4f}")
        record["configs"].append(entry)
    return _fail(record, "; ".join(problems)) if problems else _pass(record)


def part_resume(check: Check) -> dict[str, Any]:
    """A run stopped mid-epoch by SIGINT and resumed equals an uninterrupted one: weights
    bitwise, every epoch's figures exactly (the training loss within 1e-6 relative)."""
    import torch

    env = {"FMNIST_DETERMINISTIC": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    flags = [
        "train",
        "--json",
        "--device",
        check.device,
        "--dropout",
        "0.2",
        "--augment",
        "--seed",
        "7",
    ]
    if check.dry_run:
        # Enough batches that the stop lands inside the second of two epochs.
        flags += ["--epochs", "2", "--train-subset", "2000", "--test-subset", "500"]
        flags += ["--batch-size", "16", "--log-every", "5", "--hidden-sizes", "64"]
    else:
        flags += ["--epochs", "3", "--log-every", "10"]
    whole = check.command([*flags, "--runs-dir", str(check.runs_dir())], "resume-whole", env)
    record: dict[str, Any] = {"uninterrupted": {"exit": whole.returncode}}
    if (problem := whole.problem()) is not None:
        return _fail(record, f"uninterrupted run: {problem}")

    stopped = Cmd(check, [*flags, "--runs-dir", str(check.runs_dir())], "resume-stopped", env)
    signalled = False
    for event in stopped.events():
        if (
            not signalled
            and isinstance(event, dict)
            and event.get("event") == "batch"
            and event["epoch"] == 2
            and event["batch"] >= event["batches"] // 4
        ):
            stopped.proc.send_signal(signal.SIGINT)
            signalled = True
    stopped.wait()
    run_dir = _run_dir(stopped)
    record["stopped"] = {"exit": stopped.returncode, "signalled": signalled}
    if not signalled or stopped.returncode != 130 or run_dir is None:
        return _fail(
            record,
            f"the run was not stopped mid-run (exit {stopped.returncode}): "
            f"{stopped.stderr_tail(5)}",
        )
    at = torch.load(run_dir / "last.pt", weights_only=True, map_location="cpu")
    record["stopped"].update(epoch=at["epoch"], batch=at["batch"])

    resumed = check.command(
        ["train", "--json", "--resume", str(run_dir), "--runs-dir", str(run_dir.parent)],
        "resume-resumed",
        env,
    )
    record["resumed"] = {"exit": resumed.returncode}
    if (problem := resumed.problem()) is not None:
        return _fail(record, f"resumed run: {problem}")

    mine = torch.load(run_dir / "last.pt", weights_only=True, map_location="cpu")["model"]
    whole_dir = _run_dir(whole)
    assert whole_dir is not None
    theirs = torch.load(whole_dir / "last.pt", weights_only=True, map_location="cpu")["model"]
    differing = [
        key
        for key in sorted(set(mine) | set(theirs))
        if key not in mine or key not in theirs or not torch.equal(mine[key], theirs[key])
    ]
    record["tensors"] = len(theirs)
    record["tensors_differing"] = differing
    metrics = {"whole": _epoch_metrics(whole_dir), "resumed": _epoch_metrics(run_dir)}
    record["epoch_metrics"] = metrics
    problems = _metric_problems(metrics["whole"], metrics["resumed"])
    record["train_loss_relative_difference"] = max(
        (
            _relative(a["train_loss"], b["train_loss"])
            for a, b in zip(*metrics.values(), strict=False)
        ),
        default=None,
    )
    if at["batch"] <= 0:
        problems.append(f"the stop landed at an epoch's end (epoch {at['epoch']}), not inside one")
    if differing:
        problems.append(f"{len(differing)} of {len(theirs)} tensors differ: {differing[:5]}")
    if not metrics["whole"]:
        problems.append("no epoch metrics")
    return _fail(record, "; ".join(problems)) if problems else _pass(record)


def _run_dir(cmd: Cmd) -> Path | None:
    started = cmd.of("run_started")
    return Path(started[0]["run_dir"]) if started else None


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _metric_problems(whole: list[dict[str, Any]], resumed: list[dict[str, Any]]) -> list[str]:
    """How the resumed run's epochs differ from the uninterrupted run's: every figure
    exactly, but the training loss within ``TRAIN_LOSS_TOLERANCE`` (its float32 sums are
    grouped differently where the stop cut the epoch)."""
    if [e["epoch"] for e in whole] != [e["epoch"] for e in resumed]:
        return [f"epochs {[e['epoch'] for e in resumed]}, expected {[e['epoch'] for e in whole]}"]
    problems = []
    for a, b in zip(whole, resumed, strict=True):
        for key, want in a.items():
            got = b[key]
            if key == "train_loss" and want is not None and got is not None:
                if _relative(want, got) > TRAIN_LOSS_TOLERANCE:
                    problems.append(f"epoch {a['epoch']} train_loss {got!r}, expected {want!r}")
            elif got != want:
                problems.append(f"epoch {a['epoch']} {key} {got!r}, expected {want!r}")
    return problems


def _epoch_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Each epoch's figures from the run's metrics.jsonl, the last record of an epoch
    winning (a resumed run may have logged one twice)."""
    keys = (
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
        "val_loss",
        "val_accuracy",
    )
    epochs: dict[int, dict[str, Any]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "epoch":
            epochs[event["epoch"]] = {"epoch": event["epoch"], **{k: event.get(k) for k in keys}}
    return [epochs[n] for n in sorted(epochs)]


def part_telemetry(check: Check) -> dict[str, Any]:
    """``fmnist-tui gpus --json`` read back, against torch's count of GPUs."""
    cmd = check.command(["gpus", "--json"], "telemetry")
    answer = cmd.json_object()
    if answer is None:
        if "invalid choice" in cmd.stderr_tail():
            return {"status": "not available", "reason": "no `fmnist-tui gpus` command"}
        return _fail({"exit": cmd.returncode}, cmd.problem() or "no JSON answer")
    record: dict[str, Any] = {"exit": cmd.returncode, "answer": answer}
    if cmd.returncode != 0:
        return _fail(record, f"exit {cmd.returncode}")
    if check.dry_run:
        if answer.get("available"):
            return _pass(record)  # a dry run on a machine with NVML
        return _pass(record) if answer.get("reason") else _fail(record, "no reason given")
    import torch

    count = torch.cuda.device_count()
    seen = [g for g in answer.get("gpus", []) if g.get("cuda") is not None]
    record["torch_device_count"] = count
    record["nvml_gpus_seen_as_cuda"] = len(seen)
    record["pid"] = os.getpid()
    record["this_process_listed"] = any(
        p.get("pid") == os.getpid() for g in seen for p in (g.get("processes") or [])
    )
    if not answer.get("available"):
        if not _importable("pynvml"):
            return {**record, "status": "not available", "reason": answer.get("reason")}
        return _fail(record, f"NVML unavailable: {answer.get('reason')}")
    if len(seen) != count:
        return _fail(record, f"NVML matched {len(seen)} GPUs to cuda:N, torch sees {count}")
    totals = {i: torch.cuda.get_device_properties(i).total_memory for i in range(count)}
    record["memory_total"] = [
        {"cuda": g["cuda"], "nvml": g.get("memory_total"), "torch": totals[g["cuda"]]} for g in seen
    ]
    return _pass(record)


def part_ddp(check: Check) -> dict[str, Any]:
    """A 2-rank NCCL run where there are two GPUs; otherwise recorded as unverified."""
    if check.dry_run:
        return _skip({}, "dry run: gloo DDP on the CPU is tested by tests/test_ddp.py")
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        return {
            "status": "unverified",
            "gpus": count,
            "reason": f"{count} GPU: NCCL with two GPUs is unverified",
        }
    runs = check.runs_dir()
    cmd = check.command(
        [
            "train",
            "--json",
            "--nproc-per-node",
            "2",
            "--device",
            "cuda",
            "--epochs",
            "2",
            "--runs-dir",
            str(runs),
        ],
        "ddp",
    )
    record: dict[str, Any] = {"gpus": count, "exit": cmd.returncode, "train": _train_figures(cmd)}
    folders = [p for p in runs.iterdir() if p.is_dir()]
    record["run_folders"] = len(folders)
    if folders:
        status = json.loads((folders[0] / "status.json").read_text())
        record["status"] = {k: status.get(k) for k in ("state", "world_size", "global_batch")}
    if (problem := cmd.problem()) is not None:
        return _fail(record, problem)
    if len(folders) != 1:
        return _fail(record, f"{len(folders)} run folders, expected 1")
    return _pass(record)


# --- running ---------------------------------------------------------------------------


def _pass(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "status": "pass"}


def _fail(record: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**record, "status": "fail", "reason": reason}


def _skip(record: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**record, "status": "skipped", "reason": reason}


PART_FUNCTIONS: dict[str, Callable[[Check], dict[str, Any]]] = {
    "env": part_env,
    "mlp": part_mlp,
    "cnn": part_cnn,
    "sync": part_sync,
    "bf16_parity": part_bf16_parity,
    "resume": part_resume,
    "telemetry": part_telemetry,
    "ddp": part_ddp,
}


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` as indented JSON, atomically."""
    from engine.files import atomic_write

    atomic_write(path, (json.dumps(value, indent=2, default=str) + "\n").encode())


def part_path(out: Path, name: str) -> Path:
    return out / f"{PARTS.index(name) + 1:02d}-{name}.json"


def run_part(check: Check, name: str) -> dict[str, Any] | None:
    """Run one part and write its JSON; None when time ran out first (nothing written,
    so that a rerun does it)."""
    started = time.monotonic()
    try:
        record = PART_FUNCTIONS[name](check)
    except OutOfTime:
        return None
    except Exception as exc:  # a part's crash is that part's failure, not the check's
        record = _fail({}, f"{type(exc).__name__}: {exc}")
    record = {
        "part": name,
        "dry_run": check.dry_run,
        **record,
        "seconds": round(time.monotonic() - started, 2),
    }
    write_json(part_path(check.out, name), record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=os.environ.get("DRY_RUN", "") not in ("", "0"),
        help="the same parts on the CPU with small sizes (DRY_RUN=1 too)",
    )
    parser.add_argument(
        "--out",
        default=os.environ.get("OUT") or "gpu-check-out",
        help="folder for the JSON files (default: $OUT, else ./gpu-check-out)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"time for the whole check (default: {DEFAULT_SECONDS:g})",
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run")
    args = parser.parse_args(argv)
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    begin = time.monotonic()
    check = Check(out, args.dry_run, args.seconds)
    summary: dict[str, Any] = {"dry_run": args.dry_run, "parts": {}}
    try:
        for name in chosen:
            path = part_path(out, name)
            if path.exists():
                record = json.loads(path.read_text())
                summary["parts"][name] = _brief(record, kept=True)
                print(f"{name:<12} {record.get('status')} (kept from {path.name})", flush=True)
                continue
            record = run_part(check, name)
            if record is None:
                summary["parts"][name] = {"status": "not run", "reason": "out of time"}
                print(f"{name:<12} not run: out of time", flush=True)
                continue
            summary["parts"][name] = _brief(record)
            reason = f": {record['reason']}" if record.get("reason") else ""
            print(f"{name:<12} {record['status']} ({record['seconds']:.1f} s){reason}", flush=True)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(check.scratch)
    statuses = [p["status"] for p in summary["parts"].values()]
    summary["seconds"] = round(time.monotonic() - begin, 2)
    summary["status"] = (
        "fail" if "fail" in statuses else "incomplete" if "not run" in statuses else "pass"
    )
    write_json(out / "summary.json", summary)
    print(f"summary: {summary['status']} in {summary['seconds']:.1f} s ({out / 'summary.json'})")
    return 0 if summary["status"] == "pass" else 1


def _brief(record: dict[str, Any], kept: bool = False) -> dict[str, Any]:
    brief = {"status": record.get("status"), "seconds": record.get("seconds")}
    if record.get("reason"):
        brief["reason"] = record["reason"]
    if kept:
        brief["kept"] = True
    return brief


if __name__ == "__main__":
    sys.exit(main())
