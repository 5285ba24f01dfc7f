"""The ``fmnist-tui`` command: the app with no arguments, and headless subcommands.

This module holds the parser, ``main`` and ``train``; the commands that work with runs
already made are in ``tui.commands``, and the flags built from the config's field specs
in ``tui.flags``. ``train``, ``runs``, ``predict`` and ``bench`` never import Textual;
the app is imported only when it is asked for.

Exit codes: 0 done, 2 bad input, 1 training failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from engine.config import FIELDS, MODELS, TrainConfig, parse_text
from engine.errors import ConfigError, EngineError, TrainingError
from engine.events import Failed
from engine.fields import epochs_text
from engine.search_space import read_search_table
from engine.textlog import command_for
from tui.check_data import cmd_check_data
from tui.commands import cmd_bench, cmd_export, cmd_predict, cmd_runs
from tui.flags import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    Parser,
    UsageError,
    add_config_flags,
    config_from_args,
    flag,
    model_factory_arg,
    need_terminal,
    runs_dir,
)
from tui.gpus_cli import add_gpus_parser, cmd_gpus
from tui.output import (
    LossyStream,
    json_line,
    lossy_std_streams,
    printable,
    reopen_closed_std_streams,
)
from tui.search_cli import add_search_parser, attach_command, cmd_search

if TYPE_CHECKING:
    from engine.trainer import Trainer

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "PROG",
    "Parser",
    "UsageError",
    "add_config_flags",
    "build_parser",
    "cmd_train",
    "config_from_args",
    "main",
]


# ``--model`` where a run is loaded: the one permission to import the user's own code.
MODEL_AGAIN_HELP = (
    "for a run of your own model: its factory again (package.module:factory or "
    "path/to/file.py:factory), to let this command import your code"
)


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        usage=f"{PROG} [options]            the app\n       {PROG} COMMAND [options]    "
        f"a command ({PROG} COMMAND --help: its options)",
        description="Train PyTorch models on Fashion-MNIST: a keyboard-driven terminal app "
        "(no command) and headless commands.",
        add_help=False,
    )
    # The commands first, one line each; then the app's options and the settings.
    # prog: each command's usage line starts "fmnist-tui train", not the app's usage text.
    sub = parser.add_subparsers(
        title="commands", dest="command", parser_class=Parser, metavar="COMMAND", prog=PROG
    )
    options = parser.add_argument_group(
        "options (the app's; train, search and bench take them too)"
    )
    options.add_argument("-h", "--help", action="help", help="show this help message and exit")
    add_config_flags(parser, options)

    train = sub.add_parser("train", help="train headless (progress bar, plain lines or JSON)")
    add_config_flags(train)
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run (folder, id or its end) from its last checkpoint; only --epochs "
        "may change",
    )
    train.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: go on even if the run's data changed since it was trained "
        "(the change is recorded in its status.json and log)",
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
    # A rank's run folder, made by the process that launched the ranks (tui.ddp_cli).
    train.add_argument("--into", metavar="RUN_DIR", help=argparse.SUPPRESS)

    check = sub.add_parser(
        "check-data",
        help="check a dataset before training: classes, empty classes, duplicates, leakage",
    )
    add_config_flags(check)
    check.add_argument("--json", action="store_true", help="the findings as one JSON object")

    attach = sub.add_parser("attach", help="open the monitor on a run training elsewhere")
    attach.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="run folder, id or its end (default: the newest running run)",
    )
    attach.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")
    attach.add_argument(
        "--study", metavar="NAME", help="open the Search pane on a study instead of a run"
    )

    add_search_parser(sub)
    add_gpus_parser(sub)

    export = sub.add_parser(
        "export", help="export a run's model (state_dict, ONNX, pt2, TorchScript) or metrics"
    )
    export.add_argument("run", metavar="RUN", help="run folder, id or its end")
    export.add_argument(
        "--which",
        choices=["best", "last"],
        default="best",
        help="the checkpoint to export: best (the best epoch's weights) or last (the "
        "latest; default: best)",
    )
    export.add_argument(
        "--out", metavar="DIR", default=None, help="folder to write to (default: RUN/export)"
    )
    export.add_argument(
        "--format",
        metavar="FORMATS",
        action="append",
        default=None,
        help="state_dict, onnx, pt2, torchscript; several comma-separated, e.g. onnx,pt2 "
        "(default: state_dict,onnx; none with --metrics alone)",
    )
    export.add_argument(
        "--metrics", choices=["csv"], default=None, help="also write the epochs as metrics.csv"
    )
    export.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")
    export.add_argument("--model", metavar="REF", help=MODEL_AGAIN_HELP)

    runs = sub.add_parser("runs", help="list past runs")
    runs.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")
    listing = runs.add_mutually_exclusive_group()
    listing.add_argument("--json", action="store_true", help="one JSON object per run")
    listing.add_argument("--csv", action="store_true", help="the runs as CSV, a header first")

    # Options anywhere among the arguments: `predict RUN --json a.png`.
    predict = sub.add_parser("predict", help="classify images with a trained run", intermixed=True)
    predict.add_argument("run", metavar="RUN", help="run folder, id or its end")
    predict.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="PNG, JPEG, GIF or WebP files, decoded as the run's data was "
        "(default: the first --count images of the run's own test split)",
    )
    predict.add_argument(
        "--count",
        type=int,
        default=10,
        help="with no IMAGE: how many of the run's test images to classify (default: 10)",
    )
    predict.add_argument(
        "--which",
        choices=["best", "last"],
        default="best",
        help="the checkpoint to classify with: best (the best epoch's weights) or last "
        "(the latest; default: best)",
    )
    predict.add_argument("--runs-dir", default=None, help="folder of runs (default: runs)")
    predict.add_argument(
        "--device",
        default="cpu",
        help="where the model runs: cpu, cuda, cuda:N, mps or auto (default: cpu)",
    )
    predict.add_argument("--model", metavar="REF", help=MODEL_AGAIN_HELP)
    predict.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per image: class index, label, probabilities (0-1) and the "
        "true class for the run's own test images",
    )

    bench = sub.add_parser(
        "bench",
        help="time the engine against bare loops and the tutorial's loop; --to ACC: the "
        "wall time to a test accuracy",
    )
    add_config_flags(bench)
    bench.add_argument("--batch-sizes", default="64,256", help="comma-separated batch sizes")
    bench.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed passes per loop and batch size; the median is reported (default: 3)",
    )
    bench.add_argument(
        "--json", action="store_true", help="the results as one JSON object on stdout"
    )
    bench.add_argument(
        "--to",
        metavar="ACC",
        default=None,
        help="instead, train the configuration (the default preset unless told) and report "
        "the wall time from process start to the first epoch whose test accuracy reaches "
        "ACC (0..1), split into start-up, data load and training",
    )
    bench.add_argument(
        "--peers",
        nargs="?",
        const="lightning,keras",
        default=None,
        metavar="NAMES",
        help="instead, time Lightning and Keras (the [bench] extra) against the engine on "
        "the PyTorch tutorial's 784-512-512-10 MLP; NAMES picks some (default: lightning,keras)",
    )
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


def _detach(args: argparse.Namespace, config: TrainConfig | None, epochs: int | None) -> int:
    """Start training in its own session, logging to the run folder, and return once it runs."""
    from engine.detach import spawn_detached
    from engine.runs import Run

    factory = model_factory_arg(args, only_factory=config is None)
    if config is None:
        source: TrainConfig | Run = Run.open(args.resume, runs_dir(args))
    else:
        source = config
        _check_own_model(config.model, factory, "the settings name")
    started = spawn_detached(
        source,
        epochs=epochs,
        allow_data_change=args.allow_data_change,
        model_factory=factory,
    )
    run = started.run
    if args.json:
        report = {"event": "detached", "run_id": run.id, "run_dir": str(run.path)}
        print(json_line({**report, "pid": started.pid}))
    else:
        print(f"training run {run.id} in the background (pid {started.pid})")
        print(f"  log:    {run.log_path}")
        print(f"  watch:  {command_for('attach', run.id, run.path)}")
    return EXIT_OK


def _resume_epochs(args: argparse.Namespace) -> int | None:
    """The new total of epochs for ``--resume``, checked against the run before torch loads."""
    from engine.runs import Run
    from engine.state import RunState

    if not args.resume.strip():
        raise UsageError(
            "--resume needs a run: its id or its folder (got an empty value); "
            "`fmnist-tui runs` lists them"
        )
    # --model names a run's own factory again: the permission to import it.
    changed = [n for n in FIELDS if n in vars(args) and n not in ("epochs", "runs_dir", "model")]
    if changed or args.config or args.preset:
        raise UsageError(
            "--resume continues a run with its saved settings; only --epochs may be "
            f"given with it (got {', '.join(flag(n) for n in changed) or '--config/--preset'})"
        )
    epochs = parse_text("epochs", args.epochs) if "epochs" in vars(args) else None
    run = Run.open(args.resume, runs_dir(args))
    factory = model_factory_arg(args, only_factory=True)
    recorded = run.config().model
    if factory is not None and recorded in MODELS:
        raise UsageError(
            f"run {run.id} trains {recorded}, a model of its own settings; --model with "
            "--resume only names a run's own factory again: leave it out"
        )
    _check_own_model(recorded, factory, f"run {run.id} trains")
    done = run.read_status().get("epochs_completed")
    done = done if isinstance(done, int) and not isinstance(done, bool) else 0
    finished = run.state() == RunState.FINISHED
    if finished and epochs == done:
        raise UsageError(
            f"run {run.id} has trained {epochs_text(done)} already: nothing to do; give more "
            "with --epochs to train it further"
        )
    if finished and epochs is None:
        ended = run.read_status().get("reason")  # early stopping's, when it ended the run
        how = (
            f"finished after {epochs_text(done)} ({ended})"
            if isinstance(ended, str) and ended
            else f"finished all its epochs ({done})"
        )
        raise UsageError(
            f"run {run.id} has {how}; to train it further, give "
            f"the new total with --epochs (e.g. --epochs {done + 5})"
        )
    if epochs is not None and epochs < done:
        raise UsageError(
            f"--epochs {epochs} is fewer than the {epochs_text(done)} run {run.id} has "
            f"trained already; give {done} or more"
        )
    return epochs


def _check_own_model(model: str, factory: str | None, subject: str) -> None:
    """``ModelError`` unless ``model`` is the registry's or ``factory`` names it: said
    before any process starts or anything is imported (``engine.own_model``)."""
    if model not in MODELS:
        from engine.own_model import require_trust

        require_trust(model, factory, subject)


def cmd_train(args: argparse.Namespace) -> int:
    from engine.distributed import join, leave, torchrun_world_size
    from engine.runs import Run
    from engine.trainer import Trainer
    from tui.ddp_cli import launch_train, rank_config

    if args.allow_data_change and args.resume is None:
        raise UsageError(
            "--allow-data-change goes with --resume: it lets a run go on when its data "
            "changed since it was trained"
        )
    ranked = torchrun_world_size() > 1  # this process is one rank of several
    if args.detach and not ranked:
        if args.resume is not None:
            return _detach(args, None, _resume_epochs(args))
        return _detach(args, config_from_args(args), None)
    world = None
    if args.resume is not None:
        epochs = _resume_epochs(args)
        run = Run.open(args.resume, runs_dir(args))
        if not ranked and run.config().nproc_per_node > 1:
            return launch_train(args, None, run, epochs)
        world = join(run.config().device) if ranked else None
        trainer = Trainer.resume(
            run,
            epochs=epochs,
            allow_data_change=args.allow_data_change,
            model_factory=model_factory_arg(args),
            world=world,
        )
        config = trainer.config
    elif args.into is not None:  # a rank of a run its launcher made
        run = Run(args.into)
        config = run.config()
        world = join(config.device) if ranked else None
        trainer = Trainer(config, run=run, model_factory=model_factory_arg(args), world=world)
    else:
        config = config_from_args(args)
        if not ranked and config.nproc_per_node > 1:
            return launch_train(args, config, None, None)
        world = join(config.device) if ranked else None
        config = rank_config(config, world) if world is not None else config
        trainer = Trainer(config, model_factory=model_factory_arg(args), world=world)
    try:
        if world is not None and not world.is_main:  # rank 0 prints and records
            with _stop_on_signals(trainer) as interrupted:
                result = trainer.fit()
            return EXIT_INTERRUPTED if result.status == "stopped" and interrupted else EXIT_OK
        return _train_here(args, trainer, config)
    finally:
        if world is not None:
            leave()


def _train_here(args: argparse.Namespace, trainer: Trainer, config: TrainConfig) -> int:
    """Train with progress on stdout (a bar, plain lines or JSON); the exit code."""
    from tui.progress import make_reporter

    out = sys.stdout
    if isinstance(out, LossyStream):
        # Output that goes away (`| head -1`, a closed or hung-up terminal) is not the
        # run: it trains on, output dropped, and ends as it would have (exit 0 if done).
        err = sys.stderr  # now, before the progress display redirects it

        def lost(why: str) -> None:
            run = f"run {trainer.run.id}" if trainer.run is not None else "the run"
            print(
                printable(
                    f"{PROG}: note: the output is gone ({why}); {run} trains on without "
                    "printing; `fmnist-tui runs` shows how far it got"
                ),
                file=err,
                flush=True,
            )

        out.on_lost.append(lost)
    reporter = make_reporter(config, json_lines=args.json, out=out)
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
    board = trainer.tensorboard
    if board is not None and not args.json:  # where the event files are, and their cost
        print(printable(f"tensorboard: {board.path} ({board.seconds:.2f} s writing event files)"))
    if result.status == "stopped" and interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK


# --- the app -------------------------------------------------------------------------


def cmd_app(args: argparse.Namespace) -> int:
    from tui.last_settings import startup_config

    # Defaults < the last settings < --preset / --config < flags.
    base, notes = startup_config(getattr(args, "preset", None))
    config = config_from_args(args, base=base)
    factory = model_factory_arg(args)  # the one model from the user's code it may import
    # A --config file's [search] table: the form shows its fields marked for a search.
    search = read_search_table(args.config) if getattr(args, "config", None) else None
    need_terminal()
    from tui.app import FmnistApp

    app = FmnistApp(
        config=config,
        data_dir=config.data_dir or None,
        runs_dir=config.runs_dir,
        search=search,
        model_factory=factory if factory not in MODELS else None,
        notes=notes,
    )
    return app.run_for_exit_code()


COMMANDS = {
    "train": cmd_train,
    "check-data": cmd_check_data,
    "runs": cmd_runs,
    "predict": cmd_predict,
    "bench": cmd_bench,
    "attach": attach_command,
    "search": cmd_search,
    "export": cmd_export,
    "gpus": cmd_gpus,
    None: cmd_app,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fmnist-tui ARGV`` (``sys.argv[1:]`` when None); returns the exit code: 0 done,
    1 failed, 2 bad input, 130 interrupted.

    Bad input and failures are one line on stderr (``fmnist-tui: error: ...``), never a
    traceback, with control characters shown as ``?``. Output that goes away (a closed
    pipe, a hung-up terminal, ``>&-``) is dropped: ``train`` trains on; another command
    whose reader left (EPIPE, as in ``| head``) ends quietly with 0, and one that could
    not write for another reason fails with 1.
    """
    closed = reopen_closed_std_streams()
    with lossy_std_streams() as (out, _err):
        if 1 in closed:
            out.drop("standard output is closed")
        command: str | None = "?"
        try:
            args = build_parser().parse_args(argv)
            command = args.command
            code = COMMANDS[command](args)
        except UsageError as exc:
            code = _error(EXIT_BAD_INPUT, f"error: {exc}")
        except ConfigError as exc:
            code = _error(EXIT_BAD_INPUT, "error: " + "; ".join(exc.problems))
        except TrainingError as exc:
            code = _error(EXIT_FAILED, f"training failed: {exc}")
        except EngineError as exc:
            code = _error(EXIT_BAD_INPUT, f"error: {exc}")
        except KeyboardInterrupt:
            code = _error(EXIT_INTERRUPTED, "interrupted")
        if out.lost and not out.reader_left and command != "train" and code == EXIT_OK:
            code = _error(EXIT_FAILED, f"error: cannot write the output ({out.lost})")
    return code


def _error(code: int, text: str) -> int:
    """Print ``fmnist-tui: TEXT`` on stderr, each line made printable; return ``code``."""
    print(printable(f"{PROG}: {text}", lines=True), file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
