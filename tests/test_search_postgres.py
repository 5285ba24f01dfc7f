"""A study shared through PostgreSQL (Optuna's RDB storage), as workers on several machines
share one: every trial runs exactly once and none is lost, the study and its schema are
created once before the workers start, and a bad or unreachable storage is refused at once.

The server is the throwaway one ./test.sh starts (scripts/postgres.sh); the ``postgres_url``
fixture gives each test a fresh, empty database (skipped without a server, failed under
CI=true).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import optuna

from engine.runs import iter_runs
from engine.search import TrialRow, open_storage, study_rows

TRIALS = 8
SMALL = [
    "--train-subset",
    "800",
    "--test-subset",
    "200",
    "--hidden-sizes",
    "32",
    "--log-every",
    "50",
    "--device",
    "cpu",
]
FINISHED = {"complete", "pruned"}


def search_command(runs_dir: Path, study: str, storage: str, *extra: str) -> list[str]:
    """`fmnist-tui search` for a short study on ``storage``: one-epoch trials on a subset."""
    return [
        sys.executable,
        "-m",
        "tui.cli",
        "search",
        "--runs-dir",
        str(runs_dir),
        "--study",
        study,
        "--storage",
        storage,
        "--trials",
        str(TRIALS),
        "--epochs",
        "1",
        "--sampler",
        "random",
        *SMALL,
        *extra,
    ]


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` for its user (the test server trusts every local login)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}:{password}@{host}").geturl()


def finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    """Wait for ``process``; its exit code and its stdout and stderr together."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def assert_each_trial_ran_once(rows: list[TrialRow], runs_dirs: list[Path]) -> None:
    """Trials 0..TRIALS-1, each finished once, each with its own run folder in one of
    ``runs_dirs`` and no run folder that is not a trial's."""
    numbers = sorted(row.number for row in rows)
    assert numbers == list(range(TRIALS)), numbers
    assert {row.state for row in rows} <= FINISHED, [(r.number, r.state) for r in rows]
    run_ids = [row.run_id for row in rows]
    assert None not in run_ids
    assert len(set(run_ids)) == TRIALS, run_ids
    folders = [run.id for runs_dir in runs_dirs for run in iter_runs(runs_dir)]
    assert sorted(folders) == sorted(run_ids)


def test_workers_on_two_machines_share_a_study(tmp_path: Path, postgres_url: str) -> None:
    # Two worker processes on one study in a new database, as on two machines: A starts
    # the study; B joins it once it exists. Each has its own runs folder; every trial runs
    # exactly once, none is lost, the study is made once, and the password in the URL
    # reaches neither runs folder nor any output. (Several workers of one `search` share
    # the study as on the journal: tests/test_search.py.)
    password = "pw-only-in-the-url"
    url = with_password(postgres_url, password)
    runs_a, runs_b = tmp_path / "a", tmp_path / "b"
    a = subprocess.Popen(
        search_command(runs_a, "machines", url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(iter_runs(runs_a)) and a.poll() is None:
            assert time.monotonic() < deadline, "machine A started no trial in 120 s"
            time.sleep(0.05)
        b = subprocess.Popen(
            search_command(runs_b, "machines", url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            code_b, output_b = finish(b)
        finally:
            b.kill()
        code_a, output_a = finish(a)
    finally:
        a.kill()
    assert code_a == 0, output_a
    assert code_b == 0, output_b

    assert_each_trial_ran_once(study_rows(runs_a, "machines", storage=url), [runs_a, runs_b])
    names = optuna.study.get_all_study_names(open_storage(url, runs_a, "machines"))
    assert names == ["machines"]
    assert password not in output_a + output_b
    for path in [*runs_a.rglob("*"), *runs_b.rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), f"the password is in {path}"


def test_a_bad_or_unreachable_storage_is_refused_in_one_line_within_10_s(
    tmp_path: Path,
) -> None:
    urls = [
        "postgresql://nobody@127.0.0.1:1/x",  # nothing listens
        "postgresql://nobody:pw-in-a-bad-url@no-such-host.invalid/x",  # no such host
        "postgresql://nobody@192.0.2.1/x",  # TEST-NET-1: unreachable (connect_timeout)
        "mysql://nobody@127.0.0.1/x",  # not PostgreSQL
    ]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            search_command(tmp_path / "runs", "s", url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    try:
        for url, process in zip(urls, processes, strict=True):
            out, err = process.communicate(timeout=30)
            elapsed = time.monotonic() - started
            assert process.returncode == 2, (url, out, err)
            assert elapsed < 10, (url, elapsed)
            lines = err.strip().splitlines()
            assert len(lines) == 1, (url, err)
            assert "Traceback" not in out + err
            assert "postgresql" in lines[0].lower(), (url, lines[0])
            assert "pw-in-a-bad-url" not in out + err
    finally:
        for process in processes:
            process.kill()
    assert not any(iter_runs(tmp_path / "runs"))
