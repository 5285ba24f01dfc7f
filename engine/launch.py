"""Starting a data-parallel run: torchrun's elastic agent (``torch.distributed.run``),
run in this process, starts one worker per rank and waits for them.

``launch`` is what ``fmnist-tui train --nproc-per-node N`` and a detached run with
``nproc_per_node > 1`` call: the run folder is made first, the workers train into it
(rank 0 records it; ``engine.distributed``), and when a worker dies the agent stops the
others and ``launch`` writes which rank died and how into the run's ``status.json``. The
run stays resumable from its last checkpoint. ``torchrun -m tui.cli train ...`` works
too, without this module: rank 0 then makes the run folder itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from engine.state import RunState

if TYPE_CHECKING:
    from engine.runs import Run

# Exit codes a worker (and so ``launch``) ends with: 0 done, 1 failed, 2 bad input,
# 130 interrupted.
EXIT_FAILED, EXIT_INTERRUPTED = 1, 130
# Signals a rank gets from the agent, or with the terminal's Ctrl+C: a stop, not a death.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def torchrun_args(nproc_per_node: int, module: str, args: Sequence[str]) -> list[str]:
    """torchrun's command line for ``nproc_per_node`` workers of ``python -m module
    args`` on this machine: a standalone rendezvous on a free local port, no restarts
    (a resumed run goes on from its checkpoint, not from the start)."""
    return [
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc_per_node),
        "--max-restarts",
        "0",
        "-m",
        module,
        *args,
    ]


def threads_per_rank(nproc_per_node: int, cpus: int | None = None) -> int:
    """CPU threads each rank may use: the machine's (or ``cpus``) shared out, at least 1.
    torchrun would otherwise give every rank one."""
    count = cpus if cpus is not None else len(os.sched_getaffinity(0))
    return max(count // max(nproc_per_node, 1), 1)


@contextlib.contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent's own log lines (a worker's exit, the signals it sends) stay unsaid:
    ``launch`` says what happened in one line and in the run's status. ``LOGLEVEL`` set
    by the user keeps them."""
    if "LOGLEVEL" in os.environ:
        yield
        return
    logger = logging.getLogger("torch.distributed.elastic")
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


def death(rank: int, exitcode: int, pid: int) -> str:
    """How a worker ended, in words: "rank 1 (pid 4242) was killed by SIGKILL" or
    "rank 1 (pid 4242) exited with status 1"."""
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"rank {rank} (pid {pid}) was killed by {name}"
    return f"rank {rank} (pid {pid}) exited with status {exitcode}"


def launch(run: Run | None, *, nproc_per_node: int, module: str, args: Sequence[str]) -> int:
    """Train with ``nproc_per_node`` ranks running ``python -m module args``; wait for them.

    Returns 0 when every rank finished (or stopped when asked), 130 when the run was
    interrupted (Ctrl+C, SIGTERM: the ranks checkpoint and stop), 2 when rank 0 refused
    its input (it said why), 1 when training failed. When a rank died (killed by a
    signal, or exited with an error while rank 0 did not), ``run``'s status becomes
    failed with the reason naming that rank and how it ended (``failed_rank``,
    ``failed_how`` fields too); the run resumes from its last checkpoint.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_rank(nproc_per_node)))
    parsed = get_args_parser().parse_args(torchrun_args(nproc_per_node, module, args))
    try:
        with _quiet_agent():
            torchrun(parsed)  # type: ignore[no-untyped-call]
    except SignalException:
        return EXIT_INTERRUPTED
    except ChildFailedError as exc:
        ended = {rank: (f.exitcode, f.pid) for rank, f in exc.failures.items()}
        return _ended(run, ended)
    return 0


def _ended(run: Run | None, ended: dict[int, tuple[int, int]]) -> int:
    """The exit code for ranks that ended badly (rank: (exit code, pid)), and the
    run's status when one of them died."""
    # Rank 0 failing records its own reason; another rank's error counts when rank 0
    # itself did not fail (a death by a signal always does).
    main_failed = ended.get(0, (0, 0))[0] not in (0, EXIT_INTERRUPTED)
    died = [
        rank
        for rank, (code, _pid) in sorted(ended.items())
        if (code < 0 and -code not in STOP_SIGNALS)
        or (rank != 0 and code > 0 and code != EXIT_INTERRUPTED and not main_failed)
    ]
    if not died:  # rank 0 ended as it says (interrupted, bad input, failed)
        code = ended.get(0, (EXIT_FAILED, 0))[0]
        return code if code in (2, EXIT_INTERRUPTED) else EXIT_FAILED
    rank = died[0]
    code, pid = ended[rank]
    how = death(rank, code, pid)
    if run is not None:
        reason = (
            f"{how}; the other ranks were stopped; the run resumes from its last "
            f"checkpoint (fmnist-tui train --resume {run.id})"
        )
        with contextlib.suppress(OSError):
            run.write_status(RunState.FAILED, reason=reason, failed_rank=rank, failed_how=how)
    return EXIT_FAILED
