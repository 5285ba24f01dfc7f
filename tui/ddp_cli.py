"""``fmnist-tui train`` with ``--nproc-per-node N``: the launcher's side and the ranks'.

``fmnist-tui train --nproc-per-node 2 ...`` makes the run folder and hands it to
torchrun's elastic agent (``engine.launch``), which starts two ``python -m tui.cli
train --into FOLDER`` ranks; ``torchrun --nproc-per-node 2 -m tui.cli train ...`` starts
the ranks itself. A rank knows it is one from the environment torchrun sets, joins the
process group (``engine.distributed.join``) and trains; rank 0 prints and records.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from engine.config import TrainConfig
from engine.distributed import World
from engine.runs import Run
from tui.flags import EXIT_FAILED, PROG, model_factory_arg
from tui.output import printable


def launch_train(
    args: argparse.Namespace, config: TrainConfig | None, run: Run | None, epochs: int | None
) -> int:
    """Start ``config``'s new run (or resume ``run``, ``epochs`` its new total) with
    ``nproc_per_node`` ranks under torchrun's agent; wait for them and return the exit
    code (``engine.launch.launch``). When a rank died, say which and how on stderr.

    Raises ``ConfigError`` for a ``tensorboard`` folder that cannot be used and
    ``CheckpointError`` when the run folder cannot be made, before any rank starts.
    """
    from engine.launch import launch
    from engine.state import RunState
    from engine.tensorboard import check_tensorboard

    factory = model_factory_arg(args)
    if config is not None:
        check_tensorboard(config.tensorboard)  # before a run folder is made
        config = config.with_absolute_paths()
        run = Run.create(config, state=RunState.STARTING)
        worker = ["train", "--into", str(run.path)]
    else:
        assert run is not None
        config = run.config()
        worker = ["train", "--resume", str(run.path)]
        worker += ["--epochs", str(epochs)] if epochs is not None else []
        worker += ["--allow-data-change"] if args.allow_data_change else []
    worker += ["--json"] if args.json else []
    worker += ["--model", factory] if factory is not None else []
    code = launch(run, nproc_per_node=config.nproc_per_node, module="tui.cli", args=worker)
    status = run.read_status()
    if code == EXIT_FAILED and "failed_rank" in status:
        print(
            printable(f"{PROG}: training failed: {status.get('reason', '')}"),
            file=sys.stderr,
            flush=True,
        )
    return code


def rank_config(config: TrainConfig, world: World) -> TrainConfig:
    """``config`` as this rank trains it: ``nproc_per_node`` is what torchrun started
    on this machine (a run started by ``torchrun`` itself records that)."""
    if config.nproc_per_node == world.local_world_size:
        return config
    return dataclasses.replace(config, nproc_per_node=world.local_world_size)
