"""Data-parallel training: one process per device, torch.distributed, launched by torchrun.

A run with ``nproc_per_node > 1`` is trained by that many processes (ranks), started by
torchrun's elastic agent (``torch.distributed.run``; ``engine.launch``), never by a
launcher of our own. Each rank holds the whole dataset on its device and trains a
``DistributedDataParallel`` copy of the model on its share of every global batch
(``rank_order``): NCCL between GPUs, gloo between CPU processes. Rank 0 owns the run
folder (metrics, status, checkpoints), so the Monitor, ``attach`` and the Runs pane read
it as they read any run. Pause, resume and stop reach every rank at a batch boundary:
rank 0 reads them (``RunControl``) and broadcasts one small word over a CPU gloo group
(``SharedControl``), never over the CUDA group.

The environment torchrun sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``) is what ``join`` reads. The
process-group timeout is ``FMNIST_DIST_TIMEOUT`` seconds (default ``DEFAULT_TIMEOUT``):
how long a rank waits for the others in one collective before the run fails.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import DeviceError

if TYPE_CHECKING:
    import torch

    from engine.control import RunControl

TIMEOUT_VARIABLE = "FMNIST_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 600.0  # seconds; gloo's own default is 30 minutes
# Devices a data-parallel run may name: each rank takes cuda:LOCAL_RANK, or the CPU.
DEVICES = ("auto", "cuda", "cpu")
# Seconds between the control words rank 0 sends while paused, so that a long pause
# never runs into the process-group timeout.
PAUSE_HEARTBEAT = 1.0


def torchrun_world_size(environ: Mapping[str, str] | None = None) -> int:
    """``WORLD_SIZE`` as torchrun set it for this process (1 when not launched by it, or
    when the value is not a positive whole number)."""
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env:
        return 1
    try:
        return max(int(env.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def timeout_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The process-group timeout in seconds: ``FMNIST_DIST_TIMEOUT`` if it is a positive
    number, else ``DEFAULT_TIMEOUT``."""
    env = os.environ if environ is None else environ
    try:
        value = float(env.get(TIMEOUT_VARIABLE, ""))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def device_problem(device: str, nproc_per_node: int) -> str:
    """Why ``device`` cannot be used with ``nproc_per_node`` processes ("" if it can)."""
    if nproc_per_node > 1 and device.strip().lower() not in DEVICES:
        return (
            f"device {device} cannot be used by {nproc_per_node} processes: each takes "
            "a device of its own (cuda:LOCAL_RANK, or the CPU), so device must be auto, "
            "cuda or cpu"
        )
    return ""


def rank_order(order: torch.Tensor, *, world_size: int, rank: int, batch_size: int) -> torch.Tensor:
    """Rank ``rank``'s share of one epoch's ``order`` (a permutation, ``N`` int64).

    The order is cut into global batches of ``world_size * batch_size`` indices; the
    last partial one is dropped. Rank r takes the r-th run of ``batch_size`` indices in
    each, so global batch k on all ranks together is ``order[k*G:(k+1)*G]``, the batch a
    single process with batch size G would train on. Returns ``(N // G) * batch_size``
    indices: the rank's batches, one after the other.
    """
    global_batch = world_size * batch_size
    batches = len(order) // global_batch
    return (
        order[: batches * global_batch].view(batches, world_size, batch_size)[:, rank].reshape(-1)
    )


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run: its ``rank`` (0 owns the run
    folder), ``local_rank`` (its device index on this machine), ``world_size`` (processes
    in all), ``local_world_size`` (processes on this machine), the ``backend`` of the
    default group ("nccl" or "gloo"), its ``device``, and ``control_group``, a gloo group
    for rank 0's control words (a ``torch.distributed.ProcessGroup``)."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    backend: str
    device: torch.device
    control_group: Any

    @property
    def is_main(self) -> bool:
        """True on rank 0, which records the run."""
        return self.rank == 0

    def describe(self, batch_size: int) -> str:
        """The run's shape in words, e.g. "2 processes (DDP over gloo), batch 64 each:
        global batch 128"."""
        return (
            f"{self.world_size} processes (DDP over {self.backend}), batch {batch_size} "
            f"each: global batch {self.world_size * batch_size}"
        )

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over every rank, in place, on the default group (the device's;
        only at logging steps and epoch ends). Returns it."""
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather(self, value: object) -> list[object] | None:
        """Every rank's ``value`` (picklable; tensors on the CPU), in rank order, on rank 0;
        None on the others. Over the gloo control group."""
        import torch.distributed as dist

        gathered: list[object] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0, group=self.control_group)
        return gathered

    def barrier(self) -> None:
        """Wait until every rank is here (over the gloo control group)."""
        import torch.distributed as dist

        dist.barrier(group=self.control_group)


def join(device: str, environ: Mapping[str, str] | None = None) -> World:
    """Join the process group torchrun set up for this process, on its device.

    ``device`` is the run's setting: ``auto`` takes ``cuda:LOCAL_RANK`` where CUDA is
    available, else the CPU; ``cuda`` requires CUDA; ``cpu`` trains on the CPU with gloo.
    Raises ``DeviceError`` for another device (``device_problem``), for ``cuda`` without
    CUDA, and for fewer GPUs than processes on this machine.
    """
    import torch
    import torch.distributed as dist

    env = os.environ if environ is None else environ
    rank, local_rank = int(env["RANK"]), int(env["LOCAL_RANK"])
    world_size = int(env["WORLD_SIZE"])
    local_world_size = int(env.get("LOCAL_WORLD_SIZE", str(world_size)))
    spec = device.strip().lower()
    problem = device_problem(spec, world_size)
    if problem:
        raise DeviceError(problem)
    use_cuda = spec == "cuda" or (spec == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise DeviceError("device cuda was asked for, but there is no CUDA GPU here")
    if use_cuda and torch.cuda.device_count() < local_world_size:
        raise DeviceError(
            f"{local_world_size} processes on this machine need as many GPUs; it has "
            f"{torch.cuda.device_count()}"
        )
    timeout = dt.timedelta(seconds=timeout_seconds(env))
    if use_cuda:
        where = torch.device("cuda", local_rank)
        torch.cuda.set_device(where)
        dist.init_process_group("nccl", timeout=timeout, device_id=where)
    else:
        where = torch.device("cpu")
        dist.init_process_group("gloo", timeout=timeout)
    control = dist.new_group(backend="gloo", timeout=timeout)
    return World(
        rank=rank,
        local_rank=local_rank,
        world_size=world_size,
        local_world_size=local_world_size,
        backend="nccl" if use_cuda else "gloo",
        device=where,
        control_group=control,
    )


def leave() -> None:
    """Leave the process group (a no-op when none is set up)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class SharedControl:
    """Rank 0's ``RunControl``, obeyed by every rank at the same batch boundary.

    At each ``poll()`` rank 0 reads its control (the run folder's requests, signals) and
    broadcasts one word (stop, pause) over the gloo control group; every rank then acts
    on that word, so all stop or pause after the same batch. Other ranks' own requests
    (a signal torchrun forwards) are left to rank 0's. While paused, rank 0 sends the
    word again every ``PAUSE_HEARTBEAT`` seconds, so the others wait in step without
    running into the process-group timeout.
    """

    def __init__(self, control: RunControl, world: World) -> None:
        self.control = control
        self.world = world
        self._paused = False
        self._stopping = False

    def poll(self, *, force: bool = False) -> None:
        """Agree with rank 0 on whether to pause or stop (one gloo broadcast)."""
        import torch
        import torch.distributed as dist

        if self.world.is_main:
            self.control.poll(force=force)
            word = torch.tensor([int(self.control.stopping), int(self.control.paused)])
        else:
            word = torch.zeros(2, dtype=torch.int64)
        dist.broadcast(word, src=0, group=self.world.control_group)
        self._stopping, self._paused = bool(word[0]), bool(word[1]) and not bool(word[0])

    @property
    def paused(self) -> bool:
        """Whether the last word said pause (and not stop)."""
        return self._paused

    @property
    def stopping(self) -> bool:
        """Whether the last word said stop."""
        return self._stopping

    @property
    def stop_reason(self) -> str:
        """Rank 0's reason for the stop ("stop", "interrupt", "detach"); "stop" elsewhere."""
        return self.control.stop_reason if self.world.is_main else "stop"

    def wait_while_paused(self) -> None:
        """Block, every rank, until rank 0 resumes or stops."""
        while self._paused:
            if self.world.is_main:
                self.control.wait_while_paused(timeout=PAUSE_HEARTBEAT)
            self.poll(force=True)
