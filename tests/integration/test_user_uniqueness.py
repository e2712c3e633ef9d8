"""Usernames and emails stay unique under concurrent registrations and email changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from common.dynamo import from_attributes, make_client
from svc_user.config import UserSettings
from tests.support import unique
from tests.user_service import bearer, outcome, register_and_login, registration


def _claims(settings: UserSettings, kind: str, values: list[str]) -> list[dict[str, object]]:
    client = make_client(settings.dynamodb_endpoint, settings.aws_region)
    table = settings.table_prefix + settings.users_table
    found = []
    for value in values:
        item = client.get_item(
            TableName=table,
            Key={"pk": {"S": f"{kind}#{value}"}, "sk": {"S": "CLAIM"}},
            ConsistentRead=True,
        ).get("Item")
        if item:
            found.append(from_attributes(item))
    return found


def test_duplicate_username_is_refused_case_insensitively(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    first = registration()
    users.Register(first)
    again = registration(username=first.username.upper())
    assert outcome(lambda: users.Register(again)) == "ALREADY_EXISTS:USERNAME_TAKEN"


def test_duplicate_email_is_refused_and_releases_the_username(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    first = registration()
    users.Register(first)
    second = registration(email=first.email.upper())
    assert outcome(lambda: users.Register(second)) == "ALREADY_EXISTS:EMAIL_TAKEN"
    # The username the failed attempt claimed is free again.
    users.Register(registration(username=second.username))


def test_twenty_concurrent_registrations_of_one_username(
    users: user_pb2_grpc.UserServiceStub, user_settings: UserSettings
) -> None:
    username = unique("race")
    attempts = [registration(username=username) for _ in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(
            pool.map(lambda r: outcome(lambda: users.Register(r, timeout=30)), attempts)
        )
    assert outcomes.count("OK") == 1
    assert outcomes.count("ALREADY_EXISTS:USERNAME_TAKEN") == 19
    winner = attempts[outcomes.index("OK")]
    emails = [a.email for a in attempts]
    held = _claims(user_settings, "EMAIL", emails)
    assert len(held) == 1, "only the winner's email may be claimed"
    login = users.Login(user_pb2.LoginRequest(username=username, password=winner.password))
    profile = users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(login.access_token))
    assert profile.profile.email == winner.email
    assert held[0]["user_id"] == profile.profile.user_id


def test_concurrent_email_changes_to_one_address(users: user_pb2_grpc.UserServiceStub) -> None:
    target = f"{unique('wanted')}@example.org"
    sessions = [register_and_login(users)[1] for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(
            pool.map(
                lambda t: outcome(
                    lambda: users.UpdateProfile(
                        user_pb2.UpdateProfileRequest(email=target),
                        metadata=bearer(t.access_token),
                        timeout=30,
                    )
                ),
                sessions,
            )
        )
    assert outcomes.count("OK") == 1
    assert outcomes.count("ALREADY_EXISTS:EMAIL_TAKEN") == 7
    owners = [
        users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(t.access_token)).profile
        for t in sessions
    ]
    assert sum(p.email == target for p in owners) == 1


@pytest.mark.parametrize("reuse", ["username", "email"])
def test_a_registration_that_fails_late_leaves_no_claim(
    users: user_pb2_grpc.UserServiceStub, user_settings: UserSettings, reuse: str
) -> None:
    taken = registration()
    users.Register(taken)
    attempt = registration(**{reuse: getattr(taken, reuse)})
    assert outcome(lambda: users.Register(attempt)).startswith("ALREADY_EXISTS")
    own_field = "email" if reuse == "username" else "username"
    kind = own_field.upper()
    assert _claims(user_settings, kind, [getattr(attempt, own_field).lower()]) == []


def test_one_users_racing_email_changes_leave_only_the_final_address_claimed(
    users: user_pb2_grpc.UserServiceStub, user_settings: UserSettings
) -> None:
    account, tokens = register_and_login(users)
    wanted = [f"{unique('mine')}@example.org" for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(
            pool.map(
                lambda email: outcome(
                    lambda: users.UpdateProfile(
                        user_pb2.UpdateProfileRequest(email=email),
                        metadata=bearer(tokens.access_token),
                        timeout=30,
                    )
                ),
                wanted,
            )
        )
    # Each change is applied whole or refused as a lost race, never half-done.
    assert set(outcomes) <= {"OK", "ABORTED:CONCURRENT_UPDATE"}, outcomes
    applied = [email for email, outcome in zip(wanted, outcomes, strict=True) if outcome == "OK"]
    profile = users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(tokens.access_token))
    final = profile.profile.email
    assert final in applied
    # The final address is the user's; every other one, the first included, is free.
    held = _claims(user_settings, "EMAIL", [account.email, *wanted])
    assert [claim["pk"] for claim in held] == [f"EMAIL#{final}"]
