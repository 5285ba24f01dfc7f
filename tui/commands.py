"""The ``fmnist-tui`` commands that work with runs already made: ``runs``, ``predict``,
``bench``, ``export`` and ``attach``.

Each takes the parsed arguments and returns an exit code; bad input is a ``UsageError``
or an ``EngineError``, which ``tui.cli.main`` prints as one line. Torch and Textual are
imported inside the command that needs them, so listing runs stays quick.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.config import TrainConfig
from engine.fields import epochs_text, shown
from tui.flags import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    model_factory_arg,
    need_terminal,
    usable_runs_dir,
)
from tui.output import columns, fit_columns, json_line, printable

if TYPE_CHECKING:
    from engine.runs import RunInfo

# --- runs ----------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.runs import list_runs

    folder = usable_runs_dir(args)
    infos = list_runs(folder)
    if args.json:
        for info in infos:
            print(json_line(run_record(info)))
        return EXIT_OK
    if args.csv:
        write_runs_csv(infos, sys.stdout)
        return EXIT_OK
    if not infos:
        print(printable(f"no runs in {Path(folder).resolve()}"))
        return EXIT_OK
    # The best epoch's accuracy on the split that chose it (validation, or test for a run
    # without a validation split), and the same epoch's test accuracy beside it, as
    # percentages with one decimal, as the app shows them (JSON and CSV keep fractions).
    rows = [["run", "state", "epochs", "best acc", "test acc", "settings"]]
    for info in infos:
        best, test = "-", "-"
        if info.best_accuracy is not None:
            best = f"{info.best_accuracy:.1%} " + (
                "val" if info.chosen_on == "validation" else "test"
            )
        if info.best_test_accuracy is not None:
            test = f"{info.best_test_accuracy:.1%}"
        settings = info.config.summary() if info.config else "(config unreadable)"
        # The id is a folder name and may hold anything: columns() shows it printable.
        rows.append(
            [
                info.id,
                info.state,
                f"{info.epochs_completed}/{info.epochs}",
                best,
                test,
                settings,
            ]
        )
    right = frozenset({2, 3, 4})
    if sys.stdout.isatty():
        # On a terminal, one line a run: settings cut (or dropped), then ids cut from
        # their start ("…075411-mlp-de7b", which any run argument takes). Piped, in full.
        width = shutil.get_terminal_size().columns
        lines = fit_columns(rows, width, right=right, gap="  ", cut_left=0)
    else:
        lines = columns(rows, right=right, gap="  ")
    for line in lines:
        print(line)
    return EXIT_OK


def run_record(info: RunInfo) -> dict[str, Any]:
    """One run as ``runs --json`` prints it: plain JSON values, ``config`` a nested object
    (None when unreadable), accuracies fractions 0..1 or None."""
    return {
        "id": info.id,
        "path": str(info.path),
        "started": info.started,
        "state": info.state,
        "epochs_completed": info.epochs_completed,
        "epochs": info.epochs,
        "best_accuracy": info.best_accuracy,
        "best_test_accuracy": info.best_test_accuracy,
        "chosen_on": info.chosen_on,
        "macro_f1": info.macro_f1,
        "config": info.config.to_dict() if info.config else None,
        "reason": info.reason,
        "resumable": info.resumable,
    }


def write_runs_csv(infos: list[RunInfo], out: TextIO) -> None:
    """The runs as CSV on ``out``: one header row and one row per run, the columns of
    ``run_record`` with ``config`` spread into one ``config.FIELD`` column per
    ``TrainConfig`` field. Values are plain: fractions 0..1, None as an empty cell,
    true/false (as in JSON), and a list setting (``hidden_sizes``) as JSON (``[512, 512]``); an
    unreadable config leaves its columns empty."""
    import csv
    import dataclasses

    from engine.runs import RunInfo
    from engine.state import RunState

    nothing = RunInfo("", Path(), "", RunState.FINISHED, None, 0, 0, None, "", False)
    keys = [k for k in run_record(nothing) if k != "config"]
    columns = [*keys, *(f"config.{f.name}" for f in dataclasses.fields(TrainConfig))]
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for info in infos:
        record = run_record(info)
        config = record.pop("config") or {}
        record.update({f"config.{k}": v for k, v in config.items()})
        writer.writerow({k: _csv_cell(v) for k, v in record.items()})


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):  # as JSON and the config write them
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return value


# --- predict -------------------------------------------------------------------------


def _image_bytes(path: str) -> bytes:
    """The bytes of an image file named on the command line: a regular file, capped in
    size (a FIFO, a device such as /dev/zero or a folder is refused, never read)."""
    from engine.decode import read_image_file
    from engine.errors import DataError

    try:
        return read_image_file(path)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read ({exc.strerror or exc}); give PNG, JPEG, GIF or WebP image files"
        ) from None


def _own_test_data(run: Any, config: TrainConfig) -> Any:
    """The run's own test split, loaded as it was for training (its data, its subset) and
    alone (``test_only``: the training images are not read, as in Inspect), or a
    ``DataError`` in one line saying why there is none to classify."""
    from engine.errors import DataError
    from engine.identity import run_split_version
    from engine.trainer import load_data

    try:
        return load_data(config, test_only=True, split_version=run_split_version(run))
    except DataError as exc:
        # "custom dataset X: 2 problems:" and its list, on one line.
        head, *problems = str(exc).splitlines()
        head = re.sub(r": \d+ problems?:$", "", head)
        why = "; ".join([head, *(p.strip().removeprefix("- ") for p in problems if p.strip())])
        why = why.replace(f"{head}; ", f"{head}: ", 1) if problems else why
        raise DataError(
            f"cannot classify run {run.id}'s own test images: its data cannot be loaded "
            f"({why}); restore it, or name image files to classify "
            f"(`fmnist-tui predict {run.id} IMAGE...`)"
        ) from None


def cmd_predict(args: argparse.Namespace) -> int:
    import hashlib

    from engine.inference import Predictor
    from engine.runs import Run

    run = Run.open(args.run, usable_runs_dir(args, args.run))
    # The files first: one that is not an image file is said before a model loads.
    for path in args.images:
        _image_bytes(path)
    if not args.images and args.count < 1:
        raise UsageError(f"--count must be at least 1 (got {args.count})")
    predictor = Predictor.from_run(
        run,
        which=args.which,
        device=args.device,
        model_factory=model_factory_arg(args, only_factory=True),
    )
    if predictor.note:
        print(printable(f"note: {predictor.note}"), file=sys.stderr, flush=True)
    if args.images:
        # Decoded as the run's own data was: its image shape, colour and alpha policies.
        prediction = predictor.predict_files(args.images)
        assert prediction.images is not None
        images = prediction.images
        names = list(args.images)
        truth: list[int | None] = [None] * len(names)
        if not args.json:
            for note in prediction.notes:
                print(printable(f"note: {note}"), file=sys.stderr)
    else:
        data = _own_test_data(run, predictor.config)
        if data.image_shape != predictor.image_shape:
            raise UsageError(
                f"run {run.id}'s data now gives {data.image_shape[1]}x{data.image_shape[0]} "
                f"images but its model takes {predictor.image_shape[1]}x"
                f"{predictor.image_shape[0]}; name image files to classify instead"
            )
        n = min(args.count, len(data.test))
        images = data.test.images[:n]
        names = [f"test[{i}]" for i in range(n)]
        truth = [int(v) for v in data.test.labels[:n]]
        prediction = predictor.predict(images)
    classes = predictor.classes
    rows: list[list[str]] = []
    for name, image, probs, cls, true in zip(
        names, images, prediction.probabilities, prediction.classes, truth, strict=True
    ):
        if args.json:
            print(
                json_line(
                    {
                        "image": name,
                        "class": int(cls),
                        "label": classes[int(cls)],
                        "probabilities": [round(float(p), 6) for p in probs],
                        **({"true_class": true} if true is not None else {}),
                        # The decoded input the model saw, H x W uint8 in row order.
                        "pixels_sha256": hashlib.sha256(image.tobytes()).hexdigest(),
                    }
                )
            )
        else:
            mark = (
                ""
                if true is None
                else ("ok" if true == int(cls) else f"wrong (is {classes[true]})")
            )
            rows.append([name, classes[int(cls)], f"{float(probs[int(cls)]):.1%}", mark])
    # Columns as wide as their longest entry (a long file name moves them all alike).
    for line in columns(rows, right=frozenset({2}), gap="  "):
        print(line.rstrip())
    return EXIT_OK


# --- bench ---------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    """``bench``: throughput of the engine beside bare loops and the tutorial's loop; with
    ``--to ACC`` the wall time to a test accuracy; with ``--peers`` Lightning and Keras."""
    from engine.bench import run_benchmark

    if args.to is not None:
        return bench_to(args)
    try:
        sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    except ValueError:
        raise UsageError(
            f"--batch-sizes: got {shown(args.batch_sizes)}; expected numbers "
            "separated by commas, e.g. 64,256"
        ) from None
    if not sizes or any(s < 1 for s in sizes) or args.repeats < 1:
        raise UsageError("--batch-sizes and --repeats must be positive")
    if args.peers is not None:
        return bench_peers(args, sizes)
    config = bench_base(args)
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    results = run_benchmark(config, sizes, args.repeats, progress=say)
    for r in results:
        row: dict[str, Any] = {"batch_size": r.batch_size, "precision": r.precision}
        for loop in ("engine", "engine_fp32", "bare", "bare_bf16", "tutorial"):
            row[f"{loop}_samples_per_second"] = round(r.median(loop))
        row.update(
            engine_vs_bare_bf16=round(r.ratio("engine", "bare_bf16"), 3),
            engine_fp32_vs_bare=round(r.ratio("engine_fp32", "bare"), 3),
            engine_vs_tutorial=round(r.ratio("engine", "tutorial"), 2),
            bf16_emulated=r.bf16_emulated,
            repeats={loop: [round(v) for v in values] for loop, values in r.rates.items()},
        )
        if args.json:
            print(json.dumps(row))
            continue
        emulated = " (bf16 emulated here: timed on part of an epoch)" if r.bf16_emulated else ""
        engine = f"engine, precision {config.precision}"
        if r.precision != config.precision:
            engine += f" ({r.precision})"
        figures = [
            (engine, "engine", f"{row['engine_vs_bare_bf16']:.3f}x the bf16 bare loop"),
            (
                "engine, fp32",
                "engine_fp32",
                f"{row['engine_fp32_vs_bare']:.3f}x the fp32 bare loop",
            ),
            ("bare loop, fp32", "bare", ""),
            ("bare loop, bf16 autocast", "bare_bf16", emulated.strip()),
            (
                "tutorial loop, fp32",
                "tutorial",
                f"the engine is {row['engine_vs_tutorial']:.2f}x it",
            ),
        ]
        width = max(len(label) for label, _loop, _note in figures)
        print(
            f"batch {r.batch_size}, samples/s, median of {args.repeats} "
            "(a ratio: the median of the rounds' pairs)"
        )
        for label, loop, note in figures:
            print(f"  {label:<{width}} {row[f'{loop}_samples_per_second']:>9,}  {note}".rstrip())
    return EXIT_OK


def bench_base(args: argparse.Namespace) -> TrainConfig:
    """The configuration ``bench`` measures: preset, config file and flags as ``train``
    reads them (``ConfigError`` for bad ones)."""
    from tui.flags import config_from_args

    return config_from_args(args)


def bench_to(args: argparse.Namespace) -> int:
    """``bench --to ACC``: the wall time from process start to the first epoch whose test
    accuracy reaches ACC; a few lines, or one JSON object with ``--json``. Exit 1 if no
    epoch reached it."""
    import torch  # noqa: F401  # start-up counts the imports, torch's among them

    from engine.bench import process_age, time_to_accuracy

    startup = process_age()
    try:
        target = float(args.to)
    except ValueError:
        target = float("nan")
    if not 0 < target <= 1:
        raise UsageError(
            f"--to: got {shown(args.to)}; expected a test accuracy between 0 and 1, e.g. 0.88"
        )
    if args.peers is not None:
        raise UsageError("--to and --peers measure different things; give one of them")
    config = bench_base(args)
    if not args.json:
        print(
            f"training {config.model} (precision {config.precision}, "
            f"{epochs_text(config.epochs)} at most) until the test accuracy reaches {target:g}",
            file=sys.stderr,
            flush=True,
        )
    result = time_to_accuracy(config, target, startup_seconds=startup)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        outcome = (
            f"reached {result.accuracy:.4f} at epoch {result.epoch} in {result.seconds:.2f} s"
            if result.reached
            else f"NOT reached: {result.accuracy:.4f} after epoch {result.epoch}, "
            f"{result.seconds:.2f} s"
        )
        print(
            f"test accuracy {target:g}: {outcome} from process start "
            f"(start-up {result.startup_seconds:.2f} s, data load {result.load_seconds:.2f} s, "
            f"training {result.train_seconds:.2f} s; precision {result.precision})"
        )
    return EXIT_OK if result.reached else EXIT_FAILED


def bench_peers(args: argparse.Namespace, sizes: tuple[int, ...]) -> int:
    """``bench --peers``: Lightning and Keras beside the engine, each fit in its own process
    (``engine.peers``); a table, or one JSON object with ``--json``. Exit 1 if a fit failed."""
    from engine.peers import PEERS, run_peers

    names = tuple(n.strip().lower() for n in args.peers.split(",") if n.strip())
    unknown = [n for n in names if n not in PEERS]
    if not names or unknown:
        raise UsageError(
            f"--peers: got {shown(args.peers)}; expected some of {', '.join(PEERS)}, "
            "separated by commas"
        )
    device = getattr(args, "device", "cpu")
    if device != "cpu":
        raise UsageError(f"--peers: measures on the cpu only (got --device {shown(device)})")
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    report = run_peers(sizes, args.repeats, getattr(args, "data_dir", None), names, progress=say)
    if args.json:
        print(json_line(report.to_dict()))
    else:
        for line in peers_table(report):
            print(printable(line))
    return EXIT_FAILED if report.failed else EXIT_OK


def peers_table(report: Any) -> list[str]:
    """The lines ``bench --peers`` prints for an ``engine.peers.PeersReport``."""

    def precision(m: Any) -> str:
        used = m.precision_used
        return f"{m.precision} ({used})" if used and used != m.precision else m.precision

    def figure(value: float, form: str = ".2f") -> str:
        return "-" if value != value else format(value, form)  # NaN: not measured

    lines = [
        f"Same work for all: MLP 784-512-512-10 (ReLU), Adam lr 0.001, cross entropy, "
        f"{report.samples:,} training images per epoch ({report.data}), cpu.",
        f"s/epoch: median of {report.repeats} epoch{'s' if report.repeats != 1 else ''} after "
        "a warm-up epoch (not counted; 1st shows it).",
        "ratio: engine s/epoch / peer s/epoch (under 1: the engine is faster); speed-up: its "
        "inverse.",
        "",
        f"{'peer':<10} {'precision':<22} {'batch':>5} {'s/epoch':>7} {'1st':>6}  "
        f"{'engine':<15} {'s/epoch':>7} {'1st':>6} {'ratio':>6} {'speed-up':>8}",
    ]
    for c in report.comparisons():
        p, e = c.peer, c.engine
        lines.append(
            f"{p.kind:<10} {precision(p):<22} {p.batch_size:>5} {figure(p.seconds):>7} "
            f"{figure(p.first_epoch_seconds):>6}  {precision(e):<15} {figure(e.seconds):>7} "
            f"{figure(e.first_epoch_seconds):>6} {figure(c.ratio, '.3f'):>6} "
            f"{figure(c.speedup) + 'x':>8}"
        )
    for m in report.measurements:
        if m.error:
            lines.append(f"{m.kind:<10} {m.precision:<22} {m.batch_size:>5} failed: {m.error}")
    for peer, module in report.not_installed().items():
        lines.append(
            f"{peer:<10} not installed (no module named {module!r}); "
            "pip install 'fmnist-tui[bench]' adds the peers"
        )
    settings: dict[tuple[str, str], Any] = {}
    for m in report.measurements:
        if m.ok:
            settings.setdefault((m.kind, m.precision), m)
    if settings:
        lines += ["", "Settings (as run at the first batch size; the others differ in batch_size):"]
    for (kind, prec), m in settings.items():
        versions = ", ".join(f"{k} {v}" for k, v in m.versions.items())
        lines.append(f"  {kind} {prec} [{versions}]: {m.settings}")
    if report.environment:
        env = ", ".join(f"{k}={v}" for k, v in report.environment.items())
        lines.append(f"  environment of every process: {env}")
    return lines


# --- export and attach ---------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import DEFAULT_FORMATS, export_model, missing_extra, parse_formats
    from engine.runs import Run

    def note(text: str) -> None:
        print(f"note: {text}", file=sys.stderr, flush=True)

    # --format onnx,pt2 (or repeated); none: state_dict and onnx, or only --metrics.
    default = () if args.metrics else DEFAULT_FORMATS
    formats = parse_formats(args.format) if args.format else default
    # A missing [export] extra is said before the run is looked at.
    problem = missing_extra(formats)
    if problem:
        raise UsageError(problem)
    run = Run.open(args.run, usable_runs_dir(args, args.run))
    factory = model_factory_arg(args, only_factory=True)
    paths = export_model(
        run,
        args.which,
        args.out,
        note,
        formats=formats,
        metrics=args.metrics,
        model_factory=factory,
    )
    for path in paths:
        print(printable(str(path)))
    return EXIT_OK


def cmd_attach(args: argparse.Namespace) -> int:
    from engine.runs import Run, list_runs

    folder = usable_runs_dir(args, args.run)
    if args.run:
        run = Run.open(args.run, folder)
    else:
        live = [info for info in list_runs(folder) if info.state.live]
        if not live:
            raise UsageError(
                f"no run is training in {Path(folder).resolve()}; "
                "name one with `fmnist-tui attach RUN`"
            )
        run = Run(live[0].path)
    need_terminal()
    from tui.app import FmnistApp

    return FmnistApp(config=run.config(), runs_dir=folder, attach=run.path).run_for_exit_code()
