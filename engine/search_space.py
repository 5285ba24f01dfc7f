"""The space a hyperparameter search explores: which ``TrainConfig`` fields, over what.

A space is the ``[search]`` table of a TOML config file (``read_search_table``), or the
marked fields of the app's form. Each entry names a ``TrainConfig`` field and says what
the search may give it:

- a range, ``lr = { low = 1e-4, high = 1e-1, log = true }``, for a number field (float
  fields are sampled with ``suggest_float``, int fields with ``suggest_int``); ``log``
  samples uniformly in the logarithm and needs ``low > 0``;
- a list, ``batch_size = [64, 128, 256]``, ``optimizer = ["adamw", "sgd"]``,
  ``augment = [true, false]``, ``hidden_sizes = [[256, 256], [512, 512]]``, for any
  searchable field (``suggest_categorical``).

Every bound and every listed value is checked against the field's own spec
(``engine.fields``), so a space refuses what the form, the flags and a config file refuse,
in the same words. Only fields that change what a run learns can be searched
(``SEARCHABLE``); the others (the data, where a run computes or is kept, its seed, its
length, which the search's ``--epochs`` sets) say why not.

Optuna stores a categorical value only as None, a bool, a number or a string, so a listed
value of a list field (``hidden_sizes``, ``conv_channels``) is stored as text, ``"256-256"``:
``suggest`` decodes it, and ``decode_params`` turns any trial's stored ``params`` (say
``study.best_params``) back into config values.

The app's form types a field's entry as text (``parse_search_text``, ``search_text``):
``1e-4..0.1 log`` or ``0..0.5`` for a range, ``64, 128, 256`` for a list (a list field's
values separated by ``|``: ``256, 256 | 512``). ``write_config`` saves a config with its
space. No torch, textual or rich import.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import files
from engine.config import FIELDS, TrainConfig
from engine.errors import ConfigError
from engine.fields import FieldSpec, check_field, closest_name, number, shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    import optuna

__all__ = [
    "SEARCHABLE",
    "Choices",
    "Param",
    "Range",
    "SearchSpace",
    "decode_params",
    "encode_value",
    "parse_search_text",
    "read_search_table",
    "search_text",
    "write_config",
]

# Why a field that is not in SEARCHABLE cannot be searched, by field; the rest by group.
_WHY_NOT = {
    "epochs": "each trial's length is the search's --epochs",
    "seed": "the trials share one seed, so they compare settings, not luck",
    "eval_batch_size": "it does not change what a run learns",
    "log_every": "it does not change what a run learns",
    "train_subset": "it changes the data the trials are judged on",
    "test_subset": "it changes the data the trials are judged on",
    "val_fraction": "it changes the data the trials are judged on",
    "device": "it says where a run computes, not what it learns",
    "precision": "it says how a run computes, not what it learns",
    "runs_dir": "it says where a run is kept",
    "name": "it labels a run",
}
_WHY_NOT_GROUP = {"data": "it changes the data the trials are judged on"}

# The fields a search may vary, in FIELDS order: what the model is and how it is trained.
SEARCHABLE: tuple[str, ...] = tuple(
    name
    for name, spec in FIELDS.items()
    if name not in _WHY_NOT and spec.group not in _WHY_NOT_GROUP
)

_RANGE_KEYS = ("low", "high", "log")
_RANGE_FORM = "{ low = …, high = … } (log = true for a log scale)"
_LIST_SEPARATOR = "-"


@dataclass(frozen=True)
class Range:
    """A number field searched over the interval ``low .. high`` (both included).

    ``log``: sampled uniformly in the logarithm (``low > 0``). Int fields hold ints.
    """

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choices:
    """A field searched over listed values, as config values (a list field's are tuples)."""

    values: tuple[Any, ...]


Param = Range | Choices


def encode_value(name: str, value: Any) -> Any:
    """``value`` of field ``name`` as Optuna stores a categorical choice: a list field's
    tuple ``(256, 256)`` becomes ``"256-256"``; every other value is returned as is."""
    if FIELDS[name].kind == "ints":
        return _LIST_SEPARATOR.join(str(int(v)) for v in value)
    return value


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's stored ``params`` (``trial.params``, ``study.best_params``) as config
    values, ready for ``TrainConfig.from_dict(values, base=...)``: a list field's
    ``"256-256"`` becomes ``(256, 256)``. Names that are not fields are kept as they are
    (``from_dict`` then refuses them)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        spec = FIELDS.get(name)
        if spec is not None and spec.kind == "ints" and isinstance(value, str):
            out[name] = tuple(int(p) for p in value.split(_LIST_SEPARATOR) if p)
        else:
            out[name] = value
    return out


def _why_not(spec: FieldSpec) -> str:
    return _WHY_NOT.get(spec.name) or _WHY_NOT_GROUP[spec.group]


def _example_list(spec: FieldSpec) -> str:
    if spec.kind == "bool":
        return "[true, false]"
    if spec.kind in ("choice", "model"):
        return "[" + ", ".join(json.dumps(c) for c in spec.choices[:2]) + "]"
    if spec.kind == "ints":
        return "[[256, 256], [512, 512]]"
    if spec.kind == "int":  # the searchable int fields' defaults are above 0, doubled in bounds
        return f"[{spec.default}, {spec.default * 2}]"
    return "[0.1, 0.2]"


def _value_text(value: Any) -> str:
    """A config value as ``lines`` shows it: ``0.001``, ``adamw``, ``true``, ``[256, 256]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def _parse_range(spec: FieldSpec, table: Mapping[Any, Any], where: str) -> Range | list[str]:
    problems = []
    extra = [k for k in table if k not in _RANGE_KEYS]
    if extra:
        problems.append(
            f"{where}: unknown key {', '.join(shown(k) for k in extra)}; "
            f"a range has low, high and log only: {_RANGE_FORM}"
        )
    missing = [k for k in ("low", "high") if k not in table]
    if missing:
        problems.append(f"{where}: a range needs {' and '.join(missing)}: {_RANGE_FORM}")
    log = table.get("log", False)
    if not isinstance(log, bool):
        problems.append(f"{where}: log: got {shown(log)}; expected true or false")
    if problems:
        return problems
    bounds: dict[str, float] = {}
    for key in ("low", "high"):
        value, problem = check_field(spec, table[key])
        if problem:
            problems.append(
                f"{where}: {key} {shown(table[key])} is refused; expected {spec.allowed()}"
            )
        else:
            bounds[key] = value
    if problems:
        return problems
    low, high = bounds["low"], bounds["high"]
    if low >= high:
        problems.append(
            f"{where}: low {number(low)} must be below high {number(high)}"
            + (f" (to fix the value, set {spec.name} in the config)" if low == high else "")
        )
    if log and low <= 0:
        problems.append(f"{where}: a log range needs low above 0 (got low {number(low)})")
    return problems or Range(low, high, log)


def _parse_choices(spec: FieldSpec, values: list[Any], where: str) -> Choices | list[str]:
    if not values:
        return [
            f"{where}: the list is empty; give at least one value, "
            f"each {spec.allowed()}, e.g. {_example_list(spec)}"
        ]
    problems = []
    checked: list[Any] = []
    for value in values:
        value_ok, problem = check_field(spec, value)
        if problem:
            hint = f", e.g. {_example_list(spec)}" if spec.kind == "ints" else ""
            problems.append(
                f"{where}: {shown(value)} in the list is refused; "
                f"expected each value {spec.allowed()}{hint}"
            )
        elif value_ok in checked:
            problems.append(f"{where}: {_value_text(value_ok)} is listed twice")
        else:
            checked.append(value_ok)
        if len(problems) >= 3:  # a long bad list: enough to see what is wrong
            break
    return problems or Choices(tuple(checked))


def _parse_param(name: str, value: Any, source: str) -> Param | list[str]:
    where = f"{source} {name}"
    spec = FIELDS[name]
    if isinstance(value, Mapping):
        if spec.kind not in ("int", "float"):
            return [
                f"{where}: a range fits number fields only; list the values instead, "
                f"each {spec.allowed()}, e.g. {_example_list(spec)}"
            ]
        return _parse_range(spec, value, where)
    if isinstance(value, (list, tuple)):
        return _parse_choices(spec, list(value), where)
    ways = f"a range {_RANGE_FORM} or " if spec.kind in ("int", "float") else ""
    return [
        f"{where}: got {shown(value)}; expected {ways}a list of values, e.g. {_example_list(spec)}"
    ]


@dataclass(frozen=True)
class SearchSpace:
    """The fields a search varies: ``params`` maps ``TrainConfig`` field names (in
    ``FIELDS`` order) to a ``Range`` or ``Choices``.

    Build one with ``from_table`` (which validates) or ``default``; the constructor
    trusts its argument.
    """

    params: dict[str, Param]

    @classmethod
    def default(cls) -> SearchSpace:
        """The space used when none is given: lr log 1e-4..1e-1, batch_size 64/128/256,
        dropout 0..0.5, weight_decay log 1e-6..1e-2, optimizer adamw/sgd."""
        return cls.from_table(
            {
                "lr": {"low": 1e-4, "high": 1e-1, "log": True},
                "batch_size": [64, 128, 256],
                "dropout": {"low": 0.0, "high": 0.5},
                "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
                "optimizer": ["adamw", "sgd"],
            }
        )

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, source: str = "[search]") -> SearchSpace:
        """The space a ``[search]`` table (TOML or JSON, or ``to_dict``'s output) describes.

        Raises ``ConfigError`` with one problem per bad entry, each starting with
        ``source`` and the field's name and saying what is allowed: an unknown field (with
        a "did you mean"), one that cannot be searched, a range on a field that is not a
        number, bounds the field refuses, ``low >= high``, ``log`` with ``low <= 0``, keys
        other than low/high/log, an empty list, a listed value the field refuses or a
        value listed twice, and an empty table.
        """
        if not isinstance(table, Mapping):
            raise ConfigError(
                [f"{source}: expected a table of fields to search, got {type(table).__name__}"]
            )
        if not table:
            raise ConfigError(
                [f"{source}: no fields to search; add one, e.g. lr = {{ low = 1e-4, high = 0.1 }}"]
            )
        problems: list[str] = []
        parsed: dict[str, Param] = {}
        for name, value in table.items():
            spec = FIELDS.get(name) if isinstance(name, str) else None
            if spec is None:
                close = closest_name(name, FIELDS) if isinstance(name, str) else None
                hint = f" (did you mean {close!r}?)" if close else ""
                problems.append(
                    f"{source} {shown(name)}: unknown setting{hint}; "
                    f"searchable: {', '.join(SEARCHABLE)}"
                )
                continue
            if name not in SEARCHABLE:
                problems.append(
                    f"{source} {name}: cannot be searched ({_why_not(spec)}); "
                    f"searchable: {', '.join(SEARCHABLE)}"
                )
                continue
            param = _parse_param(name, value, source)
            if isinstance(param, list):
                problems.extend(param)
            else:
                parsed[name] = param
        if problems:
            raise ConfigError(problems)
        return cls({name: parsed[name] for name in FIELDS if name in parsed})

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Ask ``trial`` for a value of each field (parameter names are the field names);
        returns config values, ready for ``TrainConfig.from_dict(values, base=base)``.

        A float range uses ``suggest_float``, an int range ``suggest_int`` (both with
        ``log`` as given), a list ``suggest_categorical`` (list fields' values encoded as
        ``encode_value`` says and decoded back here).
        """
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            if isinstance(param, Range):
                if FIELDS[name].kind == "int":
                    values[name] = trial.suggest_int(
                        name, int(param.low), int(param.high), log=param.log
                    )
                else:
                    values[name] = trial.suggest_float(
                        name, float(param.low), float(param.high), log=param.log
                    )
            else:
                stored = [encode_value(name, v) for v in param.values]
                values[name] = trial.suggest_categorical(name, stored)
        return decode_params(values)

    def grid(self) -> dict[str, list[Any]]:
        """The search space of ``optuna.samplers.GridSampler``: each field's listed values,
        as Optuna stores them (``encode_value``). Raises ``ConfigError`` naming every field
        that is a range (a grid needs a list for each)."""
        ranges = [name for name, p in self.params.items() if isinstance(p, Range)]
        if ranges:
            raise ConfigError(
                [
                    "the grid sampler needs a list of values for every searched field; "
                    f"{', '.join(ranges)} {'is a range' if len(ranges) == 1 else 'are ranges'}"
                    " (list the values to try, e.g. lr = [0.001, 0.01], or use tpe or random)"
                ]
            )
        return {
            name: [encode_value(name, v) for v in p.values]
            for name, p in self.params.items()
            if isinstance(p, Choices)
        }

    def is_log(self, name: str) -> bool:
        """True when field ``name`` is searched over a log-scale range."""
        param = self.params.get(name)
        return isinstance(param, Range) and param.log

    def describe(self, name: str) -> str:
        """How field ``name`` is searched, in words: ``log-uniform 0.0001 .. 0.1``,
        ``integer 1 .. 8``, ``one of 64, 128, 256``. ``KeyError`` if it is not searched."""
        param = self.params[name]
        if isinstance(param, Choices):
            return "one of " + ", ".join(_value_text(v) for v in param.values)
        kind = "integer" if FIELDS[name].kind == "int" else "uniform"
        if param.log:
            kind = "log-integer" if kind == "integer" else "log-uniform"
        return f"{kind} {number(param.low)} .. {number(param.high)}"

    def lines(self) -> list[str]:
        """One line per field, names in a column: ``lr          log-uniform 0.0001 .. 0.1``."""
        width = max((len(name) for name in self.params), default=0) + 2
        return [f"{name:<{width}}{self.describe(name)}" for name in self.params]

    def to_dict(self) -> dict[str, Any]:
        """The table form (JSON-ready; ``from_table`` reads it back): a range is
        ``{"low": .., "high": .., "log": ..}``, a list a list (a list field's values lists)."""
        out: dict[str, Any] = {}
        for name, param in self.params.items():
            if isinstance(param, Range):
                out[name] = {"low": param.low, "high": param.high, "log": param.log}
            else:
                out[name] = [list(v) if isinstance(v, tuple) else v for v in param.values]
        return out

    def to_toml(self) -> str:
        """The ``[search]`` table as TOML, ending in a newline; ``""`` for an empty space.

        ``lr = { low = 0.0001, high = 0.1, log = true }``; ``log`` is left out when false.
        """
        if not self.params:
            return ""
        lines = ["[search]"]
        for name, value in self.to_dict().items():
            if isinstance(value, dict):
                parts = [
                    f"low = {_toml_value(value['low'])}",
                    f"high = {_toml_value(value['high'])}",
                ]
                if value["log"]:
                    parts.append("log = true")
                lines.append(f"{name} = {{ {', '.join(parts)} }}")
            else:
                lines.append(f"{name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def read_search_table(path: str | Path) -> SearchSpace | None:
    """The space in the ``search`` table of a config file (TOML when the name ends in
    .toml, JSON otherwise), or None when the file has none.

    Raises ``ConfigError`` naming the file when it cannot be read or parsed, or when its
    ``search`` table is invalid (each problem as ``SearchSpace.from_table`` words it).
    """
    path = Path(path)
    try:
        text = files.read_input_text(path)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a text file"]) from None
    kind = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        values = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except ValueError as exc:
        raise ConfigError([f"{path}: not valid {kind} ({str(exc).split(';')[0]})"]) from None
    if not isinstance(values, dict) or "search" not in values:
        return None
    return SearchSpace.from_table(values["search"], source=f"{path}: [search]")


_RANGE_TEXT = re.compile(r"^\s*(\S+?)\s*\.\.\s*(\S+?)(?:\s+(log))?\s*$", re.IGNORECASE)
_INT_TEXT = re.compile(r"^[+-]?\d{1,30}$")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _typed(spec: FieldSpec, text: str) -> Any:
    """A piece of typed text as ``spec``'s value where it reads as one; else the text,
    for ``from_table`` to refuse in its own words."""
    raw = text.strip()
    if spec.kind in ("int", "float"):
        if _INT_TEXT.match(raw.replace("_", "")):
            return int(raw.replace("_", ""))
        try:
            return float(raw)
        except ValueError:
            return raw
    if spec.kind == "bool":
        lowered = raw.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else raw
    if spec.kind == "ints":
        parts = [p for p in re.split(r"[,\s]+", raw) if p]
        ok = parts and all(_INT_TEXT.match(p) for p in parts)
        return tuple(int(p) for p in parts) if ok else raw
    lowered = raw.lower()
    if lowered not in spec.choices and lowered.replace("-", "_") in spec.choices:
        return lowered.replace("-", "_")
    if spec.kind == "model" and lowered not in spec.choices:
        return raw  # a factory reference keeps its case
    return lowered


def parse_search_text(name: str, text: str, *, source: str = "[search]") -> Param:
    """How field ``name`` is to be searched, from typed text: ``LOW..HIGH`` (``log`` after
    it for a log scale) for a number field's range, else a list of values separated by
    commas (``64, 128, 256``; ``adamw, sgd``), a list field's by ``|`` (``256, 256 | 512``).

    Raises ``ConfigError`` as ``SearchSpace.from_table`` does (one problem naming
    ``source`` and the field), and for an unknown or unsearchable ``name``.
    """
    spec = FIELDS.get(name)
    entry: Any
    match = _RANGE_TEXT.match(text)
    if spec is None:
        entry = []
    elif spec.kind in ("int", "float") and ".." in text and not match:
        raise ConfigError(
            [
                f"{source} {name}: got {shown(text.strip())}; a range reads LOW..HIGH, "
                "with log after it for a log scale (1e-4..0.1 log)"
            ]
        )
    elif match and spec.kind in ("int", "float"):
        entry = {
            "low": _typed(spec, match.group(1)),
            "high": _typed(spec, match.group(2)),
            "log": match.group(3) is not None,
        }
    else:
        separator = r"[|;]" if spec.kind == "ints" else r"[,|;]"
        entry = [_typed(spec, p) for p in re.split(separator, text) if p.strip()]
    return SearchSpace.from_table({name: entry}, source=source).params[name]


def search_text(name: str, param: Param) -> str:
    """``param`` of field ``name`` as ``parse_search_text`` reads it: ``0.0001..0.1 log``,
    ``64, 128, 256``, ``256, 256 | 512``."""
    if isinstance(param, Range):
        return f"{number(param.low)}..{number(param.high)}" + (" log" if param.log else "")
    if FIELDS[name].kind == "ints":
        return " | ".join(", ".join(str(v) for v in value) for value in param.values)
    return ", ".join(_value_text(v) for v in param.values)


def write_config(path: str | Path, config: TrainConfig, space: SearchSpace | None) -> None:
    """Save ``config`` and, unless ``space`` is None or empty, its ``search`` table, to
    ``path``: TOML when the name ends in .toml (the ``[search]`` table after the
    settings), JSON otherwise (a ``"search"`` key). ``TrainConfig.load`` and
    ``read_search_table`` read it back. The file is replaced atomically, with the mode
    the umask gives; ``OSError`` when it cannot be written.
    """
    path = Path(path)
    searched = space is not None and bool(space.params)
    if path.suffix == ".toml":
        text = config.to_toml() + ("\n" + space.to_toml() if space and searched else "")
    else:
        values = config.to_dict()
        if space and searched:
            values["search"] = space.to_dict()
        text = json.dumps(values, indent=2) + "\n"
    files.atomic_write(path, text.encode())
