"""A revoked access token stays refused whatever happens to Redis's data.

Each test revokes tokens the three ways the platform does (logout, a password change
ending the other sessions, a reused refresh token ending its family), then empties a
Redis of its own (FLUSHALL, or the process killed and a new, empty one started on the
same port) and presents the revoked tokens to svc_user and svc_order. Every answer
must be a refusal: UNAVAILABLE while the list is restored from the record, then
UNAUTHENTICATED; a token never revoked works again once the list is back. A Redis that
lost only the newest revocations and kept the completion mark (a replica promoted
before it received them) has them written back within the reconcile interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
import redis
from trading.v1 import order_pb2, order_pb2_grpc, user_pb2, user_pb2_grpc

from common.dynamo import ensure_table, make_client
from common.revocation import COMPLETE_KEY
from common.server import RunningServer
from devstack.engines import Engine, start_redis
from svc_user.__main__ import build as build_user
from svc_user.config import UserSettings
from tests.integration.order_fixtures import OrderEndpoint, wait_until
from tests.user_service import STRONG_PASSWORD, bearer, register_and_login

RESTORE_TIMEOUT = 20.0
# The keeper's reconcile interval here (10 s by default).
RECONCILE_SECONDS = 0.5


@dataclass
class Platform:
    redis: Engine
    user: RunningServer
    users: user_pb2_grpc.UserServiceStub
    orders: order_pb2_grpc.OrderServiceStub


@pytest.fixture(scope="module")
def platform(
    user_settings: UserSettings,
    start_order_server: Callable[..., OrderEndpoint],
) -> Iterator[Platform]:
    engine = start_redis()
    settings = user_settings.model_copy(
        update={"redis_url": engine.url, "revocation_reconcile_seconds": RECONCILE_SECONDS}
    )
    ensure_table(
        make_client(settings.dynamodb_endpoint, settings.aws_region),
        settings.table_prefix + settings.users_table,
    )
    user = build_user(settings)
    channel = grpc.insecure_channel(f"127.0.0.1:{user.port}")
    order = start_order_server(redis_url=engine.url, user_service_addr=f"127.0.0.1:{user.port}")
    platform = Platform(engine, user, user_pb2_grpc.UserServiceStub(channel), order.stub)
    yield platform
    channel.close()
    user.shutdown()
    # The Redis of the end: a test may have replaced the first with an empty one.
    platform.redis.stop()
    engine.stop()


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _calls(platform: Platform, token: str) -> dict[str, Callable[[], object]]:
    return {
        "svc_user GetProfile": lambda: platform.users.GetProfile(
            user_pb2.GetProfileRequest(), metadata=bearer(token), timeout=10
        ),
        "svc_order GetBalance": lambda: platform.orders.GetBalance(
            order_pb2.GetBalanceRequest(), metadata=bearer(token), timeout=10
        ),
    }


def _answers_until_restored(platform: Platform, token: str) -> dict[str, list[grpc.StatusCode]]:
    """Every answer each service gives the token from now until one is not UNAVAILABLE."""
    seen: dict[str, list[grpc.StatusCode]] = {}
    for name, call in _calls(platform, token).items():
        codes = seen.setdefault(name, [])
        deadline = time.monotonic() + RESTORE_TIMEOUT
        while True:
            codes.append(_code(call))
            if codes[-1] != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    return seen


def _flush(platform: Platform) -> None:
    redis.Redis.from_url(platform.redis.url).flushall()


def _restart_empty(platform: Platform) -> None:
    port = int(platform.redis.url.rsplit(":", 1)[1].split("/")[0])
    platform.redis.process.kill()
    platform.redis.process.wait()
    platform.redis = start_redis(port=port)


def _revoked_three_ways(platform: Platform) -> tuple[dict[str, str], str]:
    """Tokens revoked by logout, password change and refresh reuse, and one still valid."""
    users = platform.users
    _, logged_out = register_and_login(users)
    users.Logout(user_pb2.LogoutRequest(), metadata=bearer(logged_out.access_token), timeout=10)

    request, kept = register_and_login(users)
    other = users.Login(
        user_pb2.LoginRequest(username=request.username, password=STRONG_PASSWORD), timeout=10
    )
    users.ChangePassword(
        user_pb2.ChangePasswordRequest(
            current_password=STRONG_PASSWORD, new_password="Another-Horse-43!"
        ),
        metadata=bearer(kept.access_token),
        timeout=10,
    )

    _, family = register_and_login(users)
    users.RefreshToken(user_pb2.RefreshTokenRequest(refresh_token=family.refresh_token), timeout=10)
    with pytest.raises(grpc.RpcError):  # the spent token again: the family ends
        users.RefreshToken(
            user_pb2.RefreshTokenRequest(refresh_token=family.refresh_token), timeout=10
        )
    revoked = {
        "logout": logged_out.access_token,
        "password change": other.access_token,
        "refresh reuse": family.access_token,
    }
    return revoked, kept.access_token


@pytest.mark.parametrize("empty", [_flush, _restart_empty], ids=["FLUSHALL", "restarted empty"])
def test_revoked_tokens_stay_refused_after_redis_loses_its_data(
    platform: Platform, empty: Callable[[Platform], None]
) -> None:
    revoked, valid = _revoked_three_ways(platform)
    for how, token in revoked.items():
        for name, call in _calls(platform, token).items():
            assert _code(call) == grpc.StatusCode.UNAUTHENTICATED, (how, name)

    empty(platform)

    for how, token in revoked.items():
        for name, codes in _answers_until_restored(platform, token).items():
            assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED}, (
                how,
                name,
                codes,
            )
            assert codes[-1] == grpc.StatusCode.UNAUTHENTICATED, (how, name, codes)
    for name, call in _calls(platform, valid).items():
        assert _code(call) == grpc.StatusCode.OK, name


def test_until_the_list_is_restored_every_token_is_refused_with_503(platform: Platform) -> None:
    _, tokens = register_and_login(platform.users)
    client = redis.Redis.from_url(platform.redis.url)
    wait_until(lambda: client.exists(COMPLETE_KEY) == 1, "the list is complete")
    # A Redis that lost its data and has not been restored yet: only the mark is gone
    # (the keeper restores it within a fraction of a second, so look at once).
    client.delete(COMPLETE_KEY)
    answers = [_code(call) for call in _calls(platform, tokens.access_token).values()]
    assert grpc.StatusCode.OK not in answers
    wait_until(lambda: client.exists(COMPLETE_KEY) == 1, "the keeper restores the list")
    for name, call in _calls(platform, tokens.access_token).items():
        assert _code(call) == grpc.StatusCode.OK, name


def test_revocations_lost_while_the_mark_stayed_are_written_back(platform: Platform) -> None:
    revoked, valid = _revoked_three_ways(platform)
    client = redis.Redis.from_url(platform.redis.url)
    wait_until(lambda: client.exists(COMPLETE_KEY) == 1, "the list is complete")
    # What a replica promoted before it received the newest writes holds: the mark (set
    # long before) without the revocations.
    lost = [*client.scan_iter("revoked:jti:*"), *client.scan_iter("revoked:sid:*")]
    assert lost
    client.delete(*lost)
    assert client.exists(COMPLETE_KEY) == 1

    for how, token in revoked.items():
        for name, call in _calls(platform, token).items():
            wait_until(
                lambda call=call: _code(call) == grpc.StatusCode.UNAUTHENTICATED,  # type: ignore[misc]
                f"{how} token refused again by {name}",
                timeout=RESTORE_TIMEOUT,
            )
    for name, call in _calls(platform, valid).items():
        assert _code(call) == grpc.StatusCode.OK, name
