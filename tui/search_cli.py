"""``fmnist-tui search``: a hyperparameter search, headless; and ``attach --study NAME``.

The search takes the config flags ``train`` takes (and ``--config`` with a ``[search]``
table for the space), except ``--epochs``, which sets each trial's length (the base
config's epochs are what ``train the best`` uses), and ``--name`` (trials are named after
the study). It prints one line per finished trial and a summary, or with ``--json`` one
JSON object per line. Optuna is imported only when a search is asked for.
"""

from __future__ import annotations

import argparse
import inspect
import math
import shlex
import sys
from pathlib import Path
from typing import Any

from engine.config import FIELDS, parse_text
from engine.errors import EngineError
from engine.fields import epochs_text
from tui.flags import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    Parser,
    UsageError,
    add_config_flags,
    config_from_args,
    need_terminal,
    usable_runs_dir,
)
from tui.output import json_line, printable


def add_search_parser(sub: Any) -> None:
    """Register ``search`` on the subcommand parsers ``sub``."""
    search: Parser = sub.add_parser(
        "search",
        help="search hyperparameters with Optuna: trials as runs, pruned on validation accuracy",
        description="Search hyperparameters with Optuna. Each trial is an ordinary run in the "
        "runs folder; its validation accuracy after each epoch is reported, and the pruner "
        "stops poor trials early. The space is the [search] table of --config (default: lr, "
        "batch_size, dropout, weight_decay, optimizer; see --show-space). --epochs sets "
        "each trial's length.",
    )
    add_config_flags(search)
    search.add_argument(
        "--trials", type=int, metavar="N", help="finished trials (complete or pruned) to reach"
    )
    search.add_argument(
        "--timeout", type=float, metavar="S", help="start no trial after S seconds (default: none)"
    )
    search.add_argument(
        "--sampler",
        choices=["tpe", "random", "grid"],
        help="default: tpe, or a continued study's own",
    )
    search.add_argument(
        "--pruner",
        choices=["median", "hyperband", "none"],
        help="default: median, or a continued study's own",
    )
    search.add_argument(
        "--study",
        metavar="NAME",
        help="the study to run or continue (default: search-DATE-TIME, a new one)",
    )
    search.add_argument(
        "--storage",
        metavar="URL",
        help="postgresql://USER:PASSWORD@HOST:PORT/DB to share a study across machines "
        "(default: a journal file in RUNS/studies)",
    )
    search.add_argument(
        "--workers", type=int, metavar="N", help="worker processes on this machine (default: 1)"
    )
    search.add_argument(
        "--devices",
        metavar="LIST",
        help="one worker per device, e.g. cuda:0,cuda:1 (instead of --device and --workers)",
    )
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.add_argument(
        "--show-space", action="store_true", help="print the space in force and exit"
    )
    search.add_argument(
        "--detach",
        action="store_true",
        help="search in a background process that outlives this terminal; "
        "watch it with `fmnist-tui attach --study NAME`",
    )
    search.add_argument(
        "--delete-study",
        metavar="NAME",
        help="delete a study: its journal and its trials' run folders (asks first)",
    )
    search.add_argument("--yes", action="store_true", help="with --delete-study: do not ask")


def _devices(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    devices = tuple(d.strip() for d in text.split(",") if d.strip())
    if not devices:
        raise UsageError("--devices needs a list of devices, e.g. --devices cuda:0,cuda:1")
    problems = []
    for device in devices:
        try:
            parse_text("device", device)
        except ValueError as exc:  # ConfigError
            problems.append(str(exc))
    if problems:
        raise UsageError(f"--devices: {'; '.join(problems)}")
    if len(set(devices)) != len(devices):
        raise UsageError(f"--devices {text}: a device is named twice")
    return devices


def _count(number: int, noun: str) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _pruner_text(pruner: str) -> str:
    """``median pruner``, or ``no pruner`` for none."""
    return "no pruner" if pruner == "none" else f"{pruner} pruner"


def _check_kept(
    study: str,
    had_sampler: str | None,
    had_pruner: str | None,
    sampler: str | None,
    pruner: str | None,
) -> None:
    """``UsageError`` when a continued study is given a --sampler or --pruner other than
    the one it was made with (None: not recorded, or not given)."""
    other = (had_sampler and sampler and sampler != had_sampler) or (
        had_pruner and pruner and pruner != had_pruner
    )
    if other:
        has = f"the {had_sampler or '?'} sampler and {_pruner_text(had_pruner or '?')}"
        raise UsageError(
            f"study {study} was made with {has}; continue it without --sampler and --pruner "
            "(its own are used), or give another --study"
        )


def _runs_flag(runs: str) -> str:
    """`` --runs-dir RUNS`` unless ``runs`` is the default ``runs`` folder."""
    from engine.textlog import runs_dir_flag

    return runs_dir_flag(Path(runs) / "x")


def _config_given(args: argparse.Namespace) -> bool:
    """Whether any setting was given (a flag, --config or --preset)."""
    flags = [n for n in FIELDS if n in vars(args) and n != "runs_dir"]
    return bool(flags or args.config or args.preset)


def cmd_search(args: argparse.Namespace) -> int:
    from engine.search import (
        SearchOptions,
        check_search,
        check_study_name,
        create_study,
        default_study_name,
        journal_path,
        run_search,
        spawn_search,
        study_settings,
        summary_line,
        trial_line,
        write_best_config,
    )
    from engine.search_space import SearchSpace, read_search_table

    # --epochs is the trials' length here, not the base config's.
    epochs = parse_text("epochs", vars(args).pop("epochs")) if "epochs" in vars(args) else None
    if "name" in vars(args):
        raise UsageError(
            "--name: a search names its trials' runs after the study (STUDY-t007); "
            "give --study NAME instead"
        )
    devices = _devices(args.devices)
    if devices and "device" in vars(args):
        raise UsageError(
            "--devices runs one worker on each device it names; leave out --device "
            f"(got --device {args.device})"
        )
    if devices and args.workers is not None and args.workers != len(devices):
        raise UsageError(
            f"--devices names {len(devices)} devices, one worker each; leave out --workers "
            f"(got --workers {args.workers})"
        )
    base = config_from_args(args)
    runs = base.runs_dir
    if args.delete_study is not None:
        return _delete(args, runs)
    space = read_search_table(args.config) if args.config else None
    study = default_study_name() if args.study is None else check_study_name(args.study)
    stored = study_settings(runs, study, args.storage)
    sampler, pruner = args.sampler, args.pruner
    if stored is not None:  # continuing: what the study was made with, unless told
        if not _config_given(args):
            base = stored.base.with_text({"runs_dir": runs})
        space = space or stored.space
        epochs = epochs or stored.epochs
        _check_kept(study, stored.sampler, stored.pruner, sampler, pruner)
        sampler, pruner = sampler or stored.sampler, pruner or stored.pruner
    space = space or SearchSpace.default()
    if args.show_space:
        if args.json:
            print(json_line(space.to_dict()))
        else:
            for line in space.lines():
                print(printable(line))
        return EXIT_OK
    if args.trials is None:
        raise UsageError(
            "--trials N is needed: the number of finished trials (complete or pruned) "
            "that ends the search"
        )
    options = SearchOptions(
        study=study,
        trials=args.trials,
        timeout=args.timeout,
        sampler=sampler or "tpe",
        pruner=pruner or "median",
        storage=args.storage,
        workers=len(devices) or (args.workers if args.workers is not None else 1),
        devices=devices,
        epochs=epochs,
    )
    check_search(base, space, options)
    if not args.detach:  # made (or checked against) before the header: a refusal comes alone
        create_study(base, space, options)
    where = "the database" if args.storage else str(journal_path(runs, study))
    if args.detach:
        pid = spawn_search(base, space, options)
        from engine.search import log_path

        log = log_path(runs, study)
        if args.json:
            print(json_line({"event": "detached", "study": study, "pid": pid, "log": str(log)}))
        else:
            print(printable(f"searching study {study} in the background (pid {pid})"))
            print(printable(f"  log:    {log}"))
            print(printable(f"  watch:  {PROG} attach --study {study}{_runs_flag(runs)}"))
        return EXIT_OK
    workers = f"{options.worker_count} worker" + ("s" if options.worker_count > 1 else "")
    trials = _count(options.trials, "trial")
    if options.sampler == "grid":
        size = math.prod(len(values) for values in space.grid().values())
        if size < options.trials:
            trials = f"{_count(size, 'trial')} (every point of the grid)"
    length = options.epochs or base.epochs
    if args.json:
        header = {"event": "search", **options.to_dict(), "epochs": length, "storage": where}
        print(json_line(header), flush=True)
    else:
        print(
            printable(
                f"study {study}: {trials} of {epochs_text(length)}, "
                f"{options.sampler} sampler, {_pruner_text(options.pruner)}, {workers}; "
                f"{where}"
            ),
            flush=True,
        )

    def on_trial(row: Any) -> None:
        if args.json:
            print(json_line({"event": "trial", **row.to_dict()}), flush=True)
        else:
            print(printable(trial_line(row)), flush=True)

    result = run_search(base, space, options, on_trial=on_trial)
    best_file, best_problem = None, ""
    if result.best is not None:
        try:
            best_file = write_best_config(runs, study, args.storage)
        except EngineError as exc:
            best_problem = str(exc)
    follow = (
        f"{PROG} train --config {shlex.quote(str(best_file))}{_runs_flag(runs)}"
        if best_file is not None
        else None
    )
    if args.json:
        summary = {**result.to_dict(), "best_config": str(best_file) if best_file else None}
        print(json_line({"event": "summary", **summary}), flush=True)
    else:
        print(printable(summary_line(result)), flush=True)
        if follow is not None:
            print(printable(f"train the best: {follow}"), flush=True)
        elif best_problem:
            print(printable(f"the best configuration was not written: {best_problem}"), flush=True)
        if result.interrupted:
            print(
                printable(
                    f"stopped; continue with: {PROG} search --study {study} "
                    f"--trials {options.trials}{_runs_flag(runs)}"
                ),
                flush=True,
            )
    if result.error:
        print(printable(f"{PROG}: error: {result.error}"), file=sys.stderr, flush=True)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.error else EXIT_OK


def _delete(args: argparse.Namespace, runs: str) -> int:
    from engine.search import delete_study, study_rows

    study = args.delete_study
    rows = study_rows(runs, study, args.storage)
    count = len({row.run_id for row in rows if row.run_id})
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"--delete-study {study} asks before deleting, and standard input is not a "
                "terminal; give --yes to delete without asking"
            )
        prompt = (
            f"delete study {study}: its {_count(len(rows), 'trial')} and their "
            f"{_count(count, 'run folder')} "
            f"in {Path(runs).resolve()}? [y/N] "
        )
        try:
            answer = input(printable(prompt))
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    removed = delete_study(runs, study, args.storage)
    folders = sum(1 for path in removed if path.parent == Path(runs).expanduser())
    if args.json:
        print(json_line({"event": "deleted", "study": study, "removed": [str(p) for p in removed]}))
    else:
        print(printable(f"deleted study {study}: {_count(folders, 'run folder')} and its journal"))
    return EXIT_OK


def cmd_attach_study(args: argparse.Namespace) -> int:
    """``attach --study NAME``: the app, on the Search pane, watching study NAME."""
    from engine.search import check_study_name, journal_path, list_studies, study_settings

    if args.run:
        raise UsageError("give a run or --study NAME, not both")
    folder = usable_runs_dir(args)
    study = check_study_name(args.study)
    if not journal_path(folder, study).is_file():
        known = ", ".join(list_studies(folder)[:8]) or "none"
        raise UsageError(
            f"no study {study} in {Path(folder).resolve()}/studies (studies there: {known})"
        )
    settings = study_settings(folder, study)
    need_terminal()
    from tui.app import FmnistApp

    if "study" not in inspect.signature(FmnistApp).parameters:
        raise UsageError(
            "this version of the app has no Search pane to open a study in; watch the "
            f"search's trials with `{PROG} runs` or its log in {Path(folder)}/studies"
        )
    config = settings.base.with_text({"runs_dir": folder}) if settings else None
    app = FmnistApp(config=config, runs_dir=folder, study=study)
    code: int = app.run_for_exit_code()
    return code


def attach_command(args: argparse.Namespace) -> int:
    """``attach``: a run, or with ``--study`` a study."""
    if getattr(args, "study", None) is not None:
        return cmd_attach_study(args)
    from tui.commands import cmd_attach

    return cmd_attach(args)
