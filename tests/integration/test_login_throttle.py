"""The login throttle lives in svc_user: every client of Login meets it, not only the
bridge. Wrong passwords sent straight over gRPC are throttled per username and per
client address; the address a caller claims in `x-client-address` counts only when
the caller is a trusted peer (the bridge)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from common.client_address import CLIENT_ADDRESS_HEADER
from common.grpc_errors import error_info
from common.server import RunningServer
from svc_user.__main__ import build
from svc_user.config import UserSettings
from tests.user_service import STRONG_PASSWORD, registration

WRONG = "Wrong-Horse-99!"


@pytest.fixture(scope="module")
def throttled_users(
    user_settings: UserSettings,
    user_server: RunningServer,  # made the users table
) -> Iterator[Callable[..., user_pb2_grpc.UserServiceStub]]:
    """Starts an svc_user with a throttle of 5 failures and keys of its own."""
    started: list[tuple[object, grpc.Channel]] = []

    def start(**overrides: object) -> user_pb2_grpc.UserServiceStub:
        settings = user_settings.model_copy(
            update={
                "login_max_failures": 5,
                "login_throttle_key_prefix": f"login-{uuid.uuid4().hex[:8]}",
                **overrides,
            }
        )
        server = build(settings)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        started.append((server, channel))
        return user_pb2_grpc.UserServiceStub(channel)

    yield start
    for server, channel in started:
        channel.close()
        server.shutdown()  # type: ignore[attr-defined]


def _login(
    users: user_pb2_grpc.UserServiceStub, username: str, password: str, claimed: str | None = None
) -> grpc.StatusCode:
    metadata = ((CLIENT_ADDRESS_HEADER, claimed),) if claimed else ()
    try:
        users.Login(
            user_pb2.LoginRequest(username=username, password=password),
            metadata=metadata,
            timeout=30,
        )
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_twenty_wrong_passwords_over_grpc_are_throttled(
    throttled_users: Callable[..., user_pb2_grpc.UserServiceStub],
) -> None:
    users = throttled_users()
    account = registration()
    users.Register(account, timeout=30)
    answers = [_login(users, account.username, WRONG) for _ in range(20)]
    assert answers[:5] == [grpc.StatusCode.UNAUTHENTICATED] * 5
    assert answers[5:] == [grpc.StatusCode.PERMISSION_DENIED] * 15
    with pytest.raises(grpc.RpcError) as caught:
        users.Login(
            user_pb2.LoginRequest(username=account.username, password=STRONG_PASSWORD), timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(caught.value)
    assert info is not None
    assert info.reason == "AUTH_004"
    assert 295 <= int(info.metadata["retry_after_seconds"]) <= 300


def test_an_untrusted_caller_cannot_spread_guesses_over_claimed_addresses(
    throttled_users: Callable[..., user_pb2_grpc.UserServiceStub],
    audit_records: list[dict[str, Any]],
) -> None:
    users = throttled_users()  # trusts no peer: the peer's address is the client
    account = registration()
    users.Register(account, timeout=30)
    for i in range(5):
        answer = _login(users, f"nobody_{uuid.uuid4().hex[:8]}", WRONG, f"198.51.100.{i}")
        assert answer == grpc.StatusCode.UNAUTHENTICATED
    # Every guess counted against this peer, whatever address it claimed.
    blocked = _login(users, account.username, STRONG_PASSWORD, "198.51.100.77")
    assert blocked == grpc.StatusCode.PERMISSION_DENIED
    # ... and the audit log names the peer too, not the claims.
    logins = [r for r in audit_records if r["event"] == "login"]
    assert [r["client_address"] for r in logins] == ["127.0.0.1"] * 6


def test_a_trusted_peer_passes_on_the_client_address(
    throttled_users: Callable[..., user_pb2_grpc.UserServiceStub],
) -> None:
    users = throttled_users(client_address_trusted_peers=[ipaddress.ip_network("127.0.0.1/32")])
    account = registration()
    users.Register(account, timeout=30)
    for _ in range(5):
        answer = _login(users, f"nobody_{uuid.uuid4().hex[:8]}", WRONG, "198.51.100.1")
        assert answer == grpc.StatusCode.UNAUTHENTICATED
    assert _login(users, account.username, STRONG_PASSWORD, "198.51.100.1") == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # Another client behind the same bridge is not blocked.
    assert _login(users, account.username, STRONG_PASSWORD, "198.51.100.2") == grpc.StatusCode.OK


def test_an_invalid_login_request_is_not_counted(
    throttled_users: Callable[..., user_pb2_grpc.UserServiceStub],
) -> None:
    users = throttled_users()
    account = registration()
    users.Register(account, timeout=30)
    for _ in range(8):
        assert _login(users, account.username, "") == grpc.StatusCode.INVALID_ARGUMENT
    assert _login(users, account.username, STRONG_PASSWORD) == grpc.StatusCode.OK
