"""An unknown user and a wrong password must not be told apart by the time they take.

Both paths read the same number of items and run one Argon2id verification, so their
medians match closely; the bound here is loose enough for a busy 2-core machine and
tight enough to catch a path that skips the hash (which would be several times faster).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from svc_user.__main__ import build
from svc_user.config import UserSettings
from tests.user_service import register_and_login

ROUNDS = 15


def _login_seconds(users: user_pb2_grpc.UserServiceStub, username: str) -> float:
    started = time.perf_counter()
    with pytest.raises(grpc.RpcError) as refused:
        users.Login(user_pb2.LoginRequest(username=username, password="Wrong-Password-99!"))
    elapsed = time.perf_counter() - started
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return elapsed


@pytest.fixture(scope="module")
def production_cost_users(
    user_settings: UserSettings, user_server: object
) -> Iterator[user_pb2_grpc.UserServiceStub]:
    """svc_user with the default Argon2id cost, where the hash dominates a login."""
    defaults = UserSettings.model_fields
    settings = user_settings.model_copy(
        update={
            name: defaults[name].default
            for name in ("argon2_time_cost", "argon2_memory_kib", "argon2_parallelism")
        }
    )
    running = build(settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield user_pb2_grpc.UserServiceStub(channel)
    running.shutdown()


def test_unknown_user_costs_what_a_wrong_password_costs(
    production_cost_users: user_pb2_grpc.UserServiceStub,
) -> None:
    users = production_cost_users
    known = register_and_login(users)[0].username
    unknown = "ghost_" + known[-12:]
    wrong_password, unknown_user = [], []
    for _ in range(ROUNDS):  # interleaved, so load drifts hit both alike
        wrong_password.append(_login_seconds(users, known))
        unknown_user.append(_login_seconds(users, unknown))
    ratio = statistics.median(unknown_user) / statistics.median(wrong_password)
    assert 0.6 < ratio < 1.6, f"unknown/wrong-password median ratio {ratio:.2f}"
