"""svc_order started as a real process (`python -m svc_order`), to be killed or raced.

It is wired like the in-process instances of `order_fixtures` (same table, svc_user
and fake inventory), so processes and in-process instances serve the same accounts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from trading.v1 import order_pb2_grpc

from devstack.engines import free_port
from svc_order.config import OrderSettings
from tests.integration.order_fixtures import serving, wait_until
from tests.support import PATIENT_STORE

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class OrderProcess:
    process: subprocess.Popen[bytes]
    channel: grpc.Channel
    stub: order_pb2_grpc.OrderServiceStub

    def kill(self) -> None:
        """SIGKILL: no drain, no grace; whatever was between two writes stays there."""
        self.process.kill()
        self.process.wait()


def _environment(settings: OrderSettings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")]),
        "GRPC_HOST": "127.0.0.1",
        "ORDER_GRPC_PORT": str(port),
        "REDIS_URL": settings.redis_url,
        "DYNAMODB_ENDPOINT": settings.dynamodb_endpoint or "",
        "TABLE_PREFIX": settings.table_prefix,
        "USER_SERVICE_ADDR": settings.user_service_addr,
        "INVENTORY_SERVICE_ADDR": settings.inventory_service_addr,
        "SHUTDOWN_DRAIN_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        **{name.upper(): str(value) for name, value in PATIENT_STORE.items()},
        # Several processes run at once: none serves a metrics page (its port is fixed).
        "METRICS_PORT": "-1",
    }


@pytest.fixture
def start_order_process(
    make_order_settings: Callable[..., OrderSettings], tmp_path: Path
) -> Iterator[Callable[[], OrderProcess]]:
    """Starts svc_order processes (stopped after the test) and waits for SERVING."""
    started: list[OrderProcess] = []

    def start() -> OrderProcess:
        port = free_port()
        log = (tmp_path / f"svc_order-{port}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "svc_order"],
            cwd=ROOT,
            env=_environment(make_order_settings(), port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        running = OrderProcess(process, channel, order_pb2_grpc.OrderServiceStub(channel))
        started.append(running)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"svc_order exited with {process.returncode}; see {log.name}")
            return serving(channel)

        wait_until(ready, "the svc_order process reports SERVING", timeout=60)
        return running

    yield start
    for running in started:
        running.channel.close()
        if running.process.poll() is None:
            running.process.terminate()
            try:
                running.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                running.kill()
