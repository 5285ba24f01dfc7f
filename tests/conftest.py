from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from engine.data import ImageData, load_fashion_mnist


@pytest.fixture(scope="session", autouse=True)
def session_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An empty XDG config folder for the whole session, so module-scoped fixtures (set
    up before any test's own) never read the user's last-settings.json either."""
    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("session-config"))
    yield
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before


@pytest.fixture(autouse=True)
def own_config_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own empty XDG config folder, so the app's remembered settings
    (last-settings.json) never leak from one test, or from the user, into another."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


@pytest.fixture(scope="session")
def fashion() -> ImageData:
    """The real Fashion-MNIST (Debian's package in CI), loaded once per session."""
    return load_fashion_mnist(download=False)


@pytest.fixture(scope="session")
def small(fashion: ImageData) -> ImageData:
    """2,000 train and 500 test images of the real set: enough to learn, quick to train."""
    return fashion.subset(2000, 500, seed=0)


POSTGRES_URL_VARIABLE = "FMNIST_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test.

    The server is the one FMNIST_TEST_POSTGRES_URL names (./test.sh starts a throwaway one when
    PostgreSQL is installed: scripts/postgres.sh). Without it, or without psycopg2 (the
    [postgres] extra), the test is skipped; under CI=true it fails instead.
    """
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    problem = ""
    if not url:
        problem = f"no PostgreSQL server: {POSTGRES_URL_VARIABLE} is not set (./test.sh sets it)"
    else:
        try:
            import psycopg2
        except ImportError:
            problem = "psycopg2 is missing: pip install -e '.[postgres]'"
    if problem:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI must run the PostgreSQL tests: {problem}")
        pytest.skip(problem)
    name = f"fmnist_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(url, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()
