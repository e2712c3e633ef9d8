"""Real engines for the whole test session: dynalite and Redis on loopback ports, and
the one svc_user every folder shares (its fixtures live in tests/user_service.py)."""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.engines import Engine, engine_environment, start_dynalite, start_redis
from devstack.pki import ensure_pki
from tests.support import Pki
from tests.user_service import user_channel, user_server, user_settings, users  # noqa: F401

pytest_plugins = ["tests.thread_leaks"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mtls",
        action="store_true",
        help="serve every service on mutual TLS with a fresh dev CA (meant for tests/e2e)",
    )


@pytest.fixture(scope="session")
def wire_pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of every process when the run is on mTLS, else None."""
    if not request.config.getoption("--mtls"):
        return None
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def engines() -> Iterator[tuple[Engine, Engine]]:
    dynalite = start_dynalite()
    redis = start_redis()
    saved = dict(os.environ)
    os.environ.update(engine_environment(dynalite.url, redis.url))
    # A process a test starts serves its Prometheus page on a port of its own choosing:
    # the fixed default would collide between processes on one host.
    os.environ["METRICS_PORT"] = "0"
    try:
        yield dynalite, redis
    finally:
        os.environ.clear()
        os.environ.update(saved)
        dynalite.stop()
        redis.stop()


@pytest.fixture(scope="session")
def dynamodb_endpoint(engines: tuple[Engine, Engine]) -> str:
    return engines[0].url


@pytest.fixture(scope="session")
def redis_url(engines: tuple[Engine, Engine]) -> str:
    return engines[1].url


@pytest.fixture(scope="session")
def table_prefix() -> str:
    """A prefix of this session's own, so reruns against one engine never collide."""
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from svc_user.credentials import new_private_key_pem

    path = tmp_path_factory.mktemp("keys") / "jwt-ed25519.pem"
    path.write_bytes(new_private_key_pem())
    return path


@pytest.fixture
def audit_records() -> Iterator[list[dict[str, Any]]]:
    """The audit records that the in-process services write during one test, each as
    its JSON line has it (event, outcome, request_id, client_address, details)."""
    from common import audit

    records: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append({"event": record.getMessage(), **getattr(record, "audit", {})})

    stream = logging.getLogger(audit.STREAM)
    handler, level = Collect(), stream.level
    stream.addHandler(handler)
    stream.setLevel(logging.INFO)
    try:
        yield records
    finally:
        stream.removeHandler(handler)
        stream.setLevel(level)


@pytest.fixture
def own_store() -> Iterator[Engine]:
    """A dynalite for this test only (in memory): the one the test kills or stops."""
    engine = start_dynalite()
    yield engine
    if engine.process.poll() is None:
        os.kill(engine.process.pid, signal.SIGCONT)  # a stopped engine cannot terminate
    engine.stop()
