"""The README's first command: `./dev up` brings everything up, Ctrl-C stops it all,
and a restart keeps every user."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from devstack.stack import existing_specs
from tests.stack.up_process import start_up, stop_up, wait_up
from tests.support import stack_ports, unique

PASSWORD = "Correct-Horse-42!"


@pytest.mark.slow
def test_up_prints_addresses_stops_everything_and_keeps_users(tmp_path: Path) -> None:
    ports = stack_ports()
    user_address = f"127.0.0.1:{ports['USER_GRPC_PORT']}"
    name = unique()

    stack = start_up(tmp_path, ports)
    try:
        printed = wait_up(stack)
        for spec in existing_specs():
            assert f"127.0.0.1:{ports[spec.port_variable]}" in printed, spec.name
        # svc_order as two processes (stack_ports' ORDER_PROCESSES): the second is listed.
        assert "svc_order-2" in printed
        assert f"127.0.0.1:{ports['ORDER_GRPC_PORT_2']}" in printed
        assert f"grpcurl -plaintext {user_address} list" in printed
        assert f"http://127.0.0.1:{ports['BRIDGE_PORT']}/docs" in printed
        # The app's address comes first, before any service's.
        up = printed[printed.index("The platform is up.") :]
        app = up.index(f"Open the app:  http://127.0.0.1:{ports['BRIDGE_PORT']}/")
        services = [s for s in existing_specs() if not s.http]
        assert app < min(up.index(f"127.0.0.1:{ports[s.port_variable]}") for s in services)
        with grpc.insecure_channel(user_address) as channel:
            user_pb2_grpc.UserServiceStub(channel).Register(
                user_pb2.RegisterRequest(
                    username=name,
                    email=f"{name}@example.org",
                    password=PASSWORD,
                    first_name="Ada",
                    last_name="Lovelace",
                ),
                timeout=30,
            )
    finally:
        code, survivors = stop_up(stack)
    assert code == 0
    assert survivors == [], "Ctrl-C left processes running"

    restarted = start_up(tmp_path, ports)
    try:
        wait_up(restarted)
        with grpc.insecure_channel(user_address) as channel:
            tokens = user_pb2_grpc.UserServiceStub(channel).Login(
                user_pb2.LoginRequest(username=name, password=PASSWORD), timeout=30
            )
        assert tokens.access_token
    finally:
        code, survivors = stop_up(restarted)
    assert code == 0
    assert survivors == []
