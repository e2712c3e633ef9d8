"""The login throttle lives in svc_user: every client of Login meets it, not only the
bridge. Wrong passwords sent straight over gRPC are throttled per username and per
client address; the address a caller claims in `x-client-address` counts only when
the caller is a trusted peer (the bridge). Every other RPC that checks a password
(ChangePassword's and CloseAccount's current password) goes through the same throttle:
its failures count with Login's, and it is refused while Login is blocked."""

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
from tests.user_service import STRONG_PASSWORD, bearer, outcome, registration

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


# Every RPC that checks a password besides Login: a call with the given current
# password and a bearer token (a new password that would pass, so only the current
# one decides).
PASSWORD_CHECKS: dict[str, Callable[[user_pb2_grpc.UserServiceStub, str, str, str], object]] = {
    "ChangePassword": lambda users, password, token, claimed: users.ChangePassword(
        user_pb2.ChangePasswordRequest(current_password=password, new_password="Another-Horse-43!"),
        metadata=(*bearer(token), (CLIENT_ADDRESS_HEADER, claimed)),
        timeout=30,
    ),
    "CloseAccount": lambda users, password, token, claimed: users.CloseAccount(
        user_pb2.CloseAccountRequest(current_password=password),
        metadata=(*bearer(token), (CLIENT_ADDRESS_HEADER, claimed)),
        timeout=30,
    ),
}


def _signed_in(users: user_pb2_grpc.UserServiceStub) -> tuple[str, str]:
    """A new user's username and access token."""
    account = registration()
    users.Register(account, timeout=30)
    tokens = users.Login(
        user_pb2.LoginRequest(username=account.username, password=STRONG_PASSWORD), timeout=30
    )
    return account.username, tokens.access_token


@pytest.mark.parametrize("rpc", sorted(PASSWORD_CHECKS))
def test_wrong_current_passwords_are_throttled_as_logins_are(
    rpc: str, throttled_users: Callable[..., user_pb2_grpc.UserServiceStub]
) -> None:
    users = throttled_users(
        login_max_failures=3,
        login_block_seconds=120,
        client_address_trusted_peers=[ipaddress.ip_network("127.0.0.1/32")],
    )
    check = PASSWORD_CHECKS[rpc]
    username, token = _signed_in(users)
    other, other_token = _signed_in(users)
    # Three clients guess one user's password: the username's count reaches the max.
    for i in range(3):
        answer = outcome(lambda: check(users, WRONG, token, f"198.51.100.{i}"))  # noqa: B023
        assert answer == "UNAUTHENTICATED:WRONG_PASSWORD"
    # While blocked even the right password is refused, as a blocked login is ...
    with pytest.raises(grpc.RpcError) as caught:
        check(users, STRONG_PASSWORD, token, "198.51.100.50")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(caught.value)
    assert info is not None
    assert info.reason == "AUTH_004"
    assert 115 <= int(info.metadata["retry_after_seconds"]) <= 120
    # ... and login for that user is blocked too, from any address.
    assert _login(users, username, STRONG_PASSWORD, "198.51.100.51") == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # The password was neither changed nor the account closed: the user is still there.
    assert (
        outcome(
            lambda: users.GetProfile(
                user_pb2.GetProfileRequest(), metadata=bearer(token), timeout=30
            )
        )
        == "OK"
    )
    # Another user on another address is not blocked.
    assert outcome(lambda: check(users, WRONG, other_token, "198.51.100.52")) == (
        "UNAUTHENTICATED:WRONG_PASSWORD"
    )
    assert _login(users, other, STRONG_PASSWORD, "198.51.100.53") == grpc.StatusCode.OK


@pytest.mark.parametrize("rpc", sorted(PASSWORD_CHECKS))
def test_password_checks_and_logins_share_one_count_per_address(
    rpc: str, throttled_users: Callable[..., user_pb2_grpc.UserServiceStub]
) -> None:
    users = throttled_users(login_max_failures=3)  # trusts no peer: one address, 127.0.0.1
    check = PASSWORD_CHECKS[rpc]
    username, token = _signed_in(users)
    # Two wrong logins for unknown users and one wrong current password block the address.
    for _ in range(2):
        assert _login(users, f"nobody_{uuid.uuid4().hex[:8]}", WRONG) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    assert outcome(lambda: check(users, WRONG, token, "198.51.100.1")) == (
        "UNAUTHENTICATED:WRONG_PASSWORD"
    )
    assert outcome(lambda: check(users, STRONG_PASSWORD, token, "198.51.100.2")) == (
        "PERMISSION_DENIED:AUTH_004"
    )
    assert _login(users, username, STRONG_PASSWORD) == grpc.StatusCode.PERMISSION_DENIED
