"""``fmnist-tui gpus``: every NVIDIA GPU's utilisation, memory, temperature, power and
processes from NVML, as a table or one JSON object. Without NVML it says so and exits 0."""

from __future__ import annotations

import argparse
from typing import Any

from engine.gpu import GpuTelemetry
from tui.flags import EXIT_OK, Parser
from tui.gpu_text import table_rows
from tui.output import columns, json_line, printable


def add_gpus_parser(sub: Any) -> None:
    """Register ``gpus`` on the subcommand parsers ``sub``."""
    gpus: Parser = sub.add_parser(
        "gpus",
        help="the NVIDIA GPUs: utilisation, memory, temperature, power, processes",
        description="Read every NVIDIA GPU once through NVML (nvidia-ml-py): utilisation, "
        "memory used/total and free, temperature, power and the processes on it, with the "
        "cuda:N index this process sees it as (CUDA_VISIBLE_DEVICES). Without an NVIDIA "
        "driver it says so and exits 0.",
    )
    gpus.add_argument(
        "--json",
        action="store_true",
        help='one JSON object: {"available", "reason", "gpus": [...]}, sizes in bytes, '
        "power in watts",
    )


def cmd_gpus(args: argparse.Namespace, telemetry: GpuTelemetry | None = None) -> int:
    """Print the GPUs ``telemetry`` reads (NVML's, a fresh ``GpuTelemetry`` when None);
    returns 0, with or without GPUs."""
    source = GpuTelemetry() if telemetry is None else telemetry
    try:
        snapshot = source.read()
    finally:
        if telemetry is None:
            source.close()
    if args.json:
        print(json_line(snapshot.as_dict()))
    elif not snapshot.available:
        print(printable(snapshot.reason))
    else:
        for line in columns(
            table_rows(snapshot.gpus), right=frozenset({3, 4, 5, 6, 7, 8}), gap="  "
        ):
            print(line)
    return EXIT_OK
