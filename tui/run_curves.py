"""A run's curves as plain lists, read from its metrics log: no Textual, no torch.

The Runs pane reads them in a worker thread (``metrics.jsonl`` can hold thousands of
lines) and hands them to its charts. ``short_id`` makes a run id fit a chart legend;
``differing_settings`` is the table of what differs between the runs compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.events import BatchEnd, EpochEnd, Event
from engine.runs import Run


@dataclass
class RunCurves:
    """Train loss per batch event (x in epochs) and test figures per epoch."""

    run_id: str
    batch_x: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)  # in percent
    torn: bool = False  # the log ended in a partly written line (skipped)

    @property
    def empty(self) -> bool:
        return not self.batch_x and not self.epochs


def curves_from_events(run_id: str, events: list[Event]) -> RunCurves:
    curves = RunCurves(run_id)
    for event in events:
        if isinstance(event, BatchEnd):
            curves.batch_x.append(event.epoch - 1 + event.batch / max(event.batches, 1))
            curves.train_loss.append(event.loss)
        elif isinstance(event, EpochEnd):
            curves.epochs.append(event.epoch)
            curves.test_loss.append(event.test_loss)
            curves.test_accuracy.append(event.test_accuracy * 100)
    return curves


def read_curves(path: str | Path) -> RunCurves:
    """The curves of the run in folder ``path`` (I/O: call it from a worker)."""
    run = Run(Path(path))
    log = run.read_metrics()
    curves = curves_from_events(run.id, log.events)
    curves.torn = log.torn_line
    return curves


def short_id(run_id: str) -> str:
    """``20260101-120000-mlp-abcd`` -> ``120000-mlp-abcd``: the date rarely tells runs apart."""
    head, sep, rest = run_id.partition("-")
    return rest if sep and len(head) == 8 and head.isdigit() and rest else run_id


def setting_text(value: object) -> str:
    """A setting's value, short: ``(512, 256)`` -> ``512-256``, ``0.001`` -> ``0.001``."""
    if isinstance(value, (list, tuple)):
        return "-".join(setting_text(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None or value == "":
        return "—"
    return str(value)


def differing_settings(
    configs: Sequence[Mapping[str, Any] | None],
) -> list[tuple[str, list[str]]]:
    """The settings whose values are not the same in every one of ``configs`` (each a
    ``TrainConfig.to_dict()``, None for a run whose config is unreadable: "?"), in the
    configs' key order, as ``(key, [its value in each config, as text])``."""
    keys: list[str] = []
    for config in configs:
        keys += [k for k in (config or {}) if k not in keys]
    rows = []
    for key in keys:
        values = [setting_text(c[key]) if c is not None and key in c else "?" for c in configs]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows
