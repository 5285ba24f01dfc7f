"""The ``fmnist-tui`` command: the app with no arguments, and headless subcommands.

``train``, ``runs``, ``predict`` and ``bench`` never import Textual; the app is imported
only when it is asked for. Every ``TrainConfig`` field is a flag of ``train`` (and of
the app), built from the field specs, so flags, form and config files never drift.

Exit codes: 0 done, 2 bad input, 1 training failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from engine.config import FIELDS, PRESET_HELP, PRESETS, TrainConfig, parse_text, preset
from engine.errors import ConfigError, EngineError, TrainingError
from engine.events import Failed

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
PROG = "fmnist-tui"


class UsageError(Exception):
    """A bad flag or value: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _metavar(kind: str) -> str:
    return {"int": "N", "float": "X", "ints": "N,N", "device": "DEVICE", "text": "TEXT"}.get(
        kind, "VALUE"
    )


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field, plus --config and --preset."""
    parser.add_argument("--config", metavar="FILE", help="read settings from a JSON or TOML file")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="start from a preset: "
        + "; ".join(f"{name}: {text}" for name, text in PRESET_HELP.items()).replace("%", "%%"),
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in FIELDS.values():
        group = groups.get(spec.group) or parser.add_argument_group(f"{spec.group} settings")
        groups[spec.group] = group
        default = spec.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{spec.help} (default: {shown!s})".replace("%", "%%")
        if spec.kind == "bool":
            group.add_argument(
                _flag(spec.name),
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            group.add_argument(
                _flag(spec.name),
                dest=spec.name,
                metavar=_metavar(spec.kind),
                default=argparse.SUPPRESS,
                choices=None,
                help=help_text + (f"; one of {', '.join(spec.choices)}" if spec.choices else ""),
            )


def config_from_args(args: argparse.Namespace, *, base: TrainConfig | None = None) -> TrainConfig:
    """Preset, then config file, then flags: later ones win. Raises ``ConfigError``."""
    config = base or preset(getattr(args, "preset", None) or "default")
    if getattr(args, "config", None):
        config = TrainConfig.load(args.config, base=config)
    texts = {}
    for name in FIELDS:
        if name in vars(args):
            value = getattr(args, name)
            texts[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return config.with_text(texts) if texts else config


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Train PyTorch models on Fashion-MNIST: a keyboard-driven terminal app "
        "(no subcommand) and headless commands.",
    )
    add_config_flags(parser)
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    train = sub.add_parser("train", help="train headless (progress bar, plain lines or JSON)")
    add_config_flags(train)
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run (folder or id) from its last checkpoint; only --epochs may change",
    )
    train.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per event on stdout, nothing else there",
    )
    train.add_argument(
        "--detach",
        action="store_true",
        help="train in a background process that outlives this terminal; "
        "watch it with `fmnist-tui attach`",
    )

    attach = sub.add_parser("attach", help="open the monitor on a run training elsewhere")
    attach.add_argument(
        "run", metavar="RUN", nargs="?", help="run folder or id (default: the newest running run)"
    )
    attach.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")

    export = sub.add_parser("export", help="export a run's model (state_dict + TorchScript)")
    export.add_argument("run", metavar="RUN", help="run folder or id")
    export.add_argument("--which", choices=["best", "last"], default="best")
    export.add_argument(
        "--out", metavar="DIR", default=None, help="folder to write to (default: RUN/export)"
    )
    export.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")

    runs = sub.add_parser("runs", help="list past runs")
    runs.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")

    predict = sub.add_parser("predict", help="classify images with a trained run")
    predict.add_argument("run", metavar="RUN", help="run folder or id")
    predict.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="PNG/JPEG files (default: the first --count test images)",
    )
    predict.add_argument("--count", type=int, default=10, help="test images to classify")
    predict.add_argument("--which", choices=["best", "last"], default="best")
    predict.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")
    predict.add_argument("--device", default="cpu")
    predict.add_argument("--json", action="store_true")

    bench = sub.add_parser("bench", help="time the engine against the tutorial's loop")
    bench.add_argument("--batch-sizes", default="64,256", help="comma-separated batch sizes")
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--data-dir", default=None)
    bench.add_argument("--json", action="store_true")
    return parser


# --- train ---------------------------------------------------------------------------


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _stop_on_signals(trainer: Any) -> Iterator[dict[str, int]]:
    """Ctrl+C, SIGTERM and SIGHUP stop at the next batch boundary with a checkpoint.

    The previous handlers come back afterwards, so ``main()`` called in-process (tests,
    scripts) leaves its caller's Ctrl+C alone.
    """
    interrupted: dict[str, int] = {}
    terminal = [fd for fd in (1, 2) if os.isatty(fd)]  # asked now: a hung-up tty says no

    def handler(signum: int, _frame: object) -> None:
        interrupted["signal"] = signum
        if signum == signal.SIGHUP:
            # The terminal is gone and writing to it fails: what was headed there goes
            # nowhere instead of killing the run before it checkpoints. Pipes and files
            # still get every line.
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in terminal:
                os.dup2(devnull, fd)
            os.close(devnull)
        trainer.stop("interrupt")

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield interrupted
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _runs_dir(args: argparse.Namespace) -> str:
    return getattr(args, "runs_dir", None) or os.environ.get("FMNIST_RUNS") or "runs"


def _detach(args: argparse.Namespace, config: TrainConfig | None, epochs: int | None) -> int:
    """Start training in its own session, logging to the run folder, and return once it runs."""
    from engine.detach import spawn_detached
    from engine.runs import Run

    if config is None:
        source: TrainConfig | Run = Run.open(args.resume, _runs_dir(args))
    else:
        source = config
    started = spawn_detached(source, epochs=epochs)
    run = started.run
    if args.json:
        report = {"event": "detached", "run_id": run.id, "run_dir": str(run.path)}
        print(json.dumps({**report, "pid": started.pid}))
    else:
        print(f"training run {run.id} in the background (pid {started.pid})")
        print(f"  log:    {run.log_path}")
        print(f"  watch:  fmnist-tui attach {run.id}")
    return EXIT_OK


def _resume_epochs(args: argparse.Namespace) -> int | None:
    """The new total of epochs for ``--resume``, checked against the run before torch loads."""
    from engine.runs import Run
    from engine.state import RunState

    changed = [n for n in FIELDS if n in vars(args) and n not in ("epochs", "runs_dir")]
    if changed or args.config or args.preset:
        raise UsageError(
            "--resume continues a run with its saved settings; only --epochs may be "
            f"given with it (got {', '.join(_flag(n) for n in changed) or '--config/--preset'})"
        )
    epochs = parse_text("epochs", args.epochs) if "epochs" in vars(args) else None
    run = Run.open(args.resume, _runs_dir(args))
    if run.state() == RunState.FINISHED and epochs is None:
        done = run.read_status().get("epochs_completed")
        done = done if isinstance(done, int) else run.config().epochs
        raise UsageError(
            f"run {run.id} has finished all {done} epochs; to train it further, give the "
            f"new total with --epochs (e.g. --epochs {done + 5})"
        )
    return epochs


def cmd_train(args: argparse.Namespace) -> int:
    from engine.runs import Run
    from engine.trainer import Trainer
    from tui.progress import make_reporter

    if args.detach:
        if args.resume:
            return _detach(args, None, _resume_epochs(args))
        return _detach(args, config_from_args(args), None)
    if args.resume:
        epochs = _resume_epochs(args)
        trainer = Trainer.resume(Run.open(args.resume, _runs_dir(args)), epochs=epochs)
        config = trainer.config
    else:
        config = config_from_args(args)
        trainer = Trainer(config)
    reporter = make_reporter(config, json_lines=args.json)
    trainer.add_listener(reporter.on_event)
    reported: list[Failed] = []
    trainer.add_listener(lambda e: reported.append(e) if isinstance(e, Failed) else None)
    with _stop_on_signals(trainer) as interrupted, reporter:
        try:
            result = trainer.fit()
        except TrainingError:
            if reported:  # the reporter has shown why
                return EXIT_FAILED
            raise
    if result.status == "stopped" and interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK


# --- runs ----------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.runs import list_runs

    runs_dir = _runs_dir(args)
    infos = list_runs(runs_dir)
    if args.json:
        for info in infos:
            print(
                json.dumps(
                    {
                        "id": info.id,
                        "path": str(info.path),
                        "started": info.started,
                        "state": info.state,
                        "epochs_completed": info.epochs_completed,
                        "epochs": info.epochs,
                        "best_accuracy": info.best_accuracy,
                        "config": info.config.to_dict() if info.config else None,
                        "reason": info.reason,
                        "resumable": info.resumable,
                    }
                )
            )
        return EXIT_OK
    if not infos:
        print(f"no runs in {Path(runs_dir).resolve()}")
        return EXIT_OK
    print(f"{'run':<34} {'state':<12} {'epochs':>7} {'best acc':>9}  settings")
    for info in infos:
        best = f"{info.best_accuracy:.4f}" if info.best_accuracy is not None else "-"
        settings = info.config.summary() if info.config else "(config unreadable)"
        print(
            f"{info.id:<34} {info.state:<12} {info.epochs_completed:>3}/{info.epochs:<3} "
            f"{best:>9}  {settings}"
        )
    return EXIT_OK


# --- predict -------------------------------------------------------------------------


def _read_image(path: str, size: tuple[int, int]) -> Any:
    import numpy as np
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import resize

    from engine.errors import DataError

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    import torch

    try:
        image = decode_image(
            torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=ImageReadMode.GRAY
        )
    except RuntimeError as exc:
        raise DataError(f"{path}: not a readable PNG or JPEG image ({exc})") from None
    if tuple(image.shape[1:]) != size:
        image = resize(image, list(size), antialias=True)
    return np.asarray(image[0].numpy(), dtype=np.uint8)


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.data import load_fashion_mnist
    from engine.inference import Predictor
    from engine.runs import Run

    predictor = Predictor.from_run(
        Run.open(args.run, _runs_dir(args)), which=args.which, device=args.device
    )
    shape = (28, 28)
    if args.images:
        names = list(args.images)
        images = np.stack([_read_image(p, shape) for p in names])
        truth: list[int | None] = [None] * len(names)
    else:
        if args.count < 1:
            raise UsageError(f"--count must be at least 1 (got {args.count})")
        data = load_fashion_mnist(predictor.config.data_dir or None)
        n = min(args.count, len(data.test))
        images = data.test.images[:n]
        names = [f"test[{i}]" for i in range(n)]
        truth = [int(v) for v in data.test.labels[:n]]
    prediction = predictor.predict(images)
    classes = predictor.classes
    for name, probs, cls, true in zip(
        names, prediction.probabilities, prediction.classes, truth, strict=True
    ):
        if args.json:
            print(
                json.dumps(
                    {
                        "image": name,
                        "class": int(cls),
                        "label": classes[int(cls)],
                        "probabilities": [round(float(p), 6) for p in probs],
                        **({"true_class": true} if true is not None else {}),
                    }
                )
            )
        else:
            mark = (
                ""
                if true is None
                else ("  ok" if true == int(cls) else f"  wrong (is {classes[true]})")
            )
            print(f"{name:<24} {classes[int(cls)]:<12} {float(probs[int(cls)]):6.1%}{mark}")
    return EXIT_OK


# --- bench ---------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import run_benchmark

    try:
        sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    except ValueError:
        raise UsageError(
            f"--batch-sizes: got {args.batch_sizes!r}; expected numbers "
            "separated by commas, e.g. 64,256"
        ) from None
    if not sizes or any(s < 1 for s in sizes) or args.repeats < 1:
        raise UsageError("--batch-sizes and --repeats must be positive")
    config = TrainConfig.from_dict({"device": args.device})
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    results = run_benchmark(config, sizes, args.repeats, args.data_dir, progress=say)
    for r in results:
        row = {
            "batch_size": r.batch_size,
            "engine_samples_per_second": round(r.rate(r.engine)),
            "tutorial_samples_per_second": round(r.rate(r.tutorial)),
            "bare_samples_per_second": round(r.rate(r.bare)),
            "engine_vs_tutorial": round(r.tutorial / r.engine, 2),
            "engine_vs_bare": round(r.engine / r.bare, 3),
            "engine_seconds": [round(s, 3) for s in r.engine_seconds],
            "tutorial_seconds": [round(s, 3) for s in r.tutorial_seconds],
            "bare_seconds": [round(s, 3) for s in r.bare_seconds],
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"batch {r.batch_size:>4}: engine {row['engine_samples_per_second']:>7,} "
                f"samples/s ({r.engine:.2f} s/epoch) | tutorial loop "
                f"{row['tutorial_samples_per_second']:>7,} ({r.tutorial:.2f} s) | bare loop "
                f"{row['bare_samples_per_second']:>7,} ({r.bare:.2f} s) | engine is "
                f"{row['engine_vs_tutorial']:.2f}x the tutorial, {r.engine / r.bare:.3f}x "
                "the bare loop's time"
            )
    return EXIT_OK


# --- export and attach ---------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_model
    from engine.runs import Run

    paths = export_model(Run.open(args.run, _runs_dir(args)), args.which, args.out)
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_attach(args: argparse.Namespace) -> int:
    from engine.runs import Run, list_runs

    runs_dir = _runs_dir(args)
    if args.run:
        run = Run.open(args.run, runs_dir)
    else:
        live = [info for info in list_runs(runs_dir) if info.state == "running"]
        if not live:
            raise UsageError(
                f"no run is training in {Path(runs_dir).resolve()}; "
                "name one with `fmnist-tui attach RUN`"
            )
        run = Run(live[0].path)
    from tui.app import FmnistApp

    FmnistApp(config=run.config(), runs_dir=runs_dir, attach=run.path).run()
    return EXIT_OK


# --- the app -------------------------------------------------------------------------


def cmd_app(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from tui.app import FmnistApp

    FmnistApp(config=config, data_dir=config.data_dir or None, runs_dir=config.runs_dir).run()
    return EXIT_OK


COMMANDS = {
    "train": cmd_train,
    "runs": cmd_runs,
    "predict": cmd_predict,
    "bench": cmd_bench,
    "attach": cmd_attach,
    "export": cmd_export,
    None: cmd_app,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        print(f"{PROG}: error: " + "; ".join(exc.problems), file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingError as exc:
        print(f"{PROG}: training failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except EngineError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
