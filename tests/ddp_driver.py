"""One rank of a data-parallel run for ``tests/test_ddp.py``, started by torchrun.

Run as ``torchrun --standalone --nproc-per-node 2 tests/ddp_driver.py RUN_DIR EPOCH BATCH``:
trains the run made beforehand in RUN_DIR (``Run.create``) and, on rank 0, asks for a
stop the moment batch BATCH of epoch EPOCH is logged (``Trainer.stop`` from a listener,
the public seam), so the run stops at exactly that batch on every rank.
"""

from __future__ import annotations

import sys

from engine.distributed import join, leave
from engine.events import BatchEnd, Event
from engine.runs import Run
from engine.trainer import Trainer


def main() -> int:
    run = Run(sys.argv[1])
    at = (int(sys.argv[2]), int(sys.argv[3]))
    config = run.config()
    world = join(config.device)
    trainer = Trainer(config, run=run, world=world)

    def stop_there(event: Event) -> None:
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == at:
            trainer.stop()

    if world.is_main:
        trainer.add_listener(stop_there)
    try:
        trainer.fit()
    finally:
        leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
