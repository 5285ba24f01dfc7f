"""What the ``fmnist-tui`` commands share: the argument parser, its config flags, the exit
codes and the one-line usage error.

Every ``TrainConfig`` field is a flag, built from the field specs, so the flags, the
app's form and config files never drift apart. Nothing here imports torch or Textual.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from engine.config import FIELDS, PRESET_HELP, PRESETS, TrainConfig, parse_text, preset
from engine.fields import SHOWN_LIMIT, FieldSpec, number, shown

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
PROG = "fmnist-tui"


class UsageError(Exception):
    """A bad flag or value: printed as one line, exit code 2."""


# A value argparse quotes in its message ("invalid choice: '...'"), when too long to echo.
_LONG_QUOTED = re.compile(f"'([^']{{{SHOWN_LIMIT + 1},}})'")
# The most of argparse's message kept (it lists every unrecognised argument).
MESSAGE_LIMIT = 300


class Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as one-line ``UsageError``s (values cut short).

    ``intermixed=True`` lets options come anywhere among the positional arguments
    (``predict RUN --json a.png b.png``): it parses with ``parse_known_intermixed_args``,
    which works on a subcommand's parser, not on one that has subcommands.
    """

    def __init__(self, *args: Any, intermixed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intermixed = intermixed
        self._intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # The parent parser calls this for a subcommand; the intermixed parse calls it in
        # turn, which must then be the plain one.
        if not self.intermixed or self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def error(self, message: str) -> NoReturn:
        message = _LONG_QUOTED.sub(lambda m: shown(m.group(1)), message)
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT] + "…"
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def flag(name: str) -> str:
    """The flag of a config field: ``hidden_sizes`` is ``--hidden-sizes``."""
    return "--" + name.replace("_", "-")


def _metavar(kind: str) -> str:
    return {"int": "N", "float": "X", "ints": "N,N", "device": "DEVICE", "text": "TEXT"}.get(
        kind, "VALUE"
    )


def bounds_text(spec: FieldSpec) -> str:
    """The bounds of a number field (or of each item of an "ints" list) in words, as the
    validation applies them: ``greater than 0, at most 10``; "" when it has none."""
    parts = []
    if spec.low is not None:
        parts.append(f"{'greater than' if spec.low_open else 'at least'} {number(spec.low)}")
    if spec.high is not None:
        parts.append(f"{'less than' if spec.high_open else 'at most'} {number(spec.high)}")
    if not parts:
        return ""
    each = f"1 to {spec.max_items} items, each " if spec.kind == "ints" else ""
    return each + ", ".join(parts)


def add_config_flags(
    parser: argparse.ArgumentParser, options: argparse._ActionsContainer | None = None
) -> None:
    """One flag per ``TrainConfig`` field, each with its default and its bounds, plus
    --config and --preset (in ``options`` when given, a group of the parser's)."""
    first = options if options is not None else parser
    first.add_argument("--config", metavar="FILE", help="read settings from a JSON or TOML file")
    first.add_argument(
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
        if shown == "":
            # The help says what an empty value does, "(empty: search)": point at it.
            shown = "empty" if "(empty:" in spec.help else "none"
        bounds = bounds_text(spec)
        help_text = f"{spec.help} (default: {shown!s}" + (f"; {bounds})" if bounds else ")")
        help_text = help_text.replace("%", "%%")
        if spec.kind == "bool":
            group.add_argument(
                flag(spec.name),
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            group.add_argument(
                flag(spec.name),
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


def model_factory_arg(args: argparse.Namespace, *, only_factory: bool = False) -> str | None:
    """The ``--model`` flag as the one permission to import a model from the user's code:
    None when the flag was not given (a config file naming a factory never counts), else
    its value, a factory reference's file made absolute (``engine.own_model``).

    ``only_factory`` (``predict``, ``export``, ``--resume``, where ``--model`` only names a
    run's factory again): ``UsageError`` unless it is a factory reference. Raises
    ``ConfigError`` for a value ``--model`` never takes.
    """
    from engine.fields import absolute_model_reference, is_model_reference

    text = vars(args).get("model")
    if text is None:
        return None
    value = parse_text("model", text)
    if only_factory and not is_model_reference(value):
        raise UsageError(
            f"--model here names your own model's factory, to import it "
            f"(package.module:factory or path/to/file.py:factory); got {shown(text)}"
        )
    return absolute_model_reference(value)


def need_terminal() -> None:
    """Raise ``UsageError`` unless standard input, output and error are all a terminal:
    the app reads keys and draws there, and would otherwise fill a log with escape codes."""
    names = [name for fd, name in enumerate(("input", "output", "error")) if not os.isatty(fd)]
    if names:
        which = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        verb = "is not a terminal" if len(names) == 1 else "are not terminals"
        raise UsageError(
            f"the app needs a terminal, and standard {which} {verb}; for headless "
            "training use `fmnist-tui train` (see `fmnist-tui train --help`), and "
            "`fmnist-tui runs` to list runs"
        )


def runs_dir(args: argparse.Namespace) -> str:
    """The folder of runs: ``--runs-dir``, else ``FMNIST_RUNS``, else ``runs``."""
    return getattr(args, "runs_dir", None) or os.environ.get("FMNIST_RUNS") or "runs"


def usable_runs_dir(args: argparse.Namespace, ref: str | None = None) -> str:
    """``runs_dir(args)``, refused with a ``UsageError`` when it cannot be a runs folder (a
    file, a broken symbolic link). With ``ref`` (a run named on the command line), only
    when the run is named by id: a run given by path does not need the runs folder."""
    from engine.runs import runs_folder_problem

    folder = runs_dir(args)
    if ref is None or not any(sep in ref for sep in ("/", os.sep)):
        problem = runs_folder_problem(folder)
        if problem is not None:
            raise UsageError(f"cannot use runs folder {folder}: {problem}")
    return folder
