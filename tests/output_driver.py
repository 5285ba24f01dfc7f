"""Runs ``fmnist-tui`` (``tui.cli.main``) in forked children of one warm interpreter, for
``tests/test_faults_output.py``: each child gets the standard streams a test hands it.

Run as ``python tests/output_driver.py FD``, FD being one end of a Unix socket pair.
Each request on it is one JSON object, ``{"argv": [...], "closed": [1, 2]}``, sent with
three descriptors (SCM_RIGHTS) for the child's stdin, stdout and stderr. The driver
forks; the child puts the descriptors on 0, 1 and 2, closes those listed in
``closed`` (as a shell's ``>&-`` does) and, as CPython does when it starts with a
standard descriptor closed, sets that ``sys`` stream to None. It runs ``main(argv)``,
then flushes ``sys.stdout`` and ``sys.stderr`` as the interpreter does on its way out
(where a failure makes CPython print "Exception ignored" and exit with 120, so it does
here) and exits. The driver answers ``{"pid": N}`` at once and
``{"exit": CODE, "signal": SIG}`` when the child has ended, then waits for the next.

Forking from a warm interpreter makes a run cost a fraction of a second instead of a
four-second start. The driver imports torch but never runs a torch operation, so no
OpenMP thread team exists to be broken by ``fork``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback

# What ``fmnist-tui train`` imports lazily is imported once here, so children start warm.
import rich.progress  # noqa: F401
import torch
import torch._dynamo  # noqa: F401  (the optimisers import it on first use)

import engine.device
import engine.inference
import engine.models
import engine.trainer  # noqa: F401
import tui.cli
import tui.progress

STREAMS = ("stdin", "stdout", "stderr")


def child(argv: list[str], fds: list[int], closed: list[int]) -> None:
    """The forked child: standard streams in place, ``main(argv)``, then exit."""
    code = 99
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for fd in closed:
            os.close(fd)
            setattr(sys, STREAMS[fd], None)
            setattr(sys, f"__{STREAMS[fd]}__", None)
        code = tui.cli.main(argv)
    except BaseException:
        traceback.print_exc()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None:
            try:
                stream.flush()
            except Exception:
                code = 120  # CPython: "Exception ignored ... BrokenPipeError", status 120
    os._exit(code)


def serve(sock: socket.socket) -> None:
    """Answer requests until the test closes its end."""
    while True:
        message, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 3)
        if not message:
            return
        request = json.loads(message)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sock.close()
            child(request["argv"], list(fds), request.get("closed", []))
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _pid, status = os.waitpid(pid, 0)
        ended = {
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        }
        sock.sendall(json.dumps(ended).encode() + b"\n")


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
