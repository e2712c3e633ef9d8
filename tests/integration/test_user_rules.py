"""Every user-field rule of API.md, each refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from common.grpc_errors import field_violations
from tests.user_service import bearer, register_and_login, registration


def _years_ago(years: int, days: int = 0) -> str:
    today = datetime.now(UTC).date()
    try:
        then = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        then = date(today.year - years, 2, 28)
    return (then + timedelta(days=days)).isoformat()


REFUSED_REGISTRATIONS = [
    ("username", "short"),
    ("username", "x" * 31),
    ("username", "has space1"),
    ("username", "dash-not-ok"),
    ("username", "<script>x"),
    ("username", "trailing_newline\n"),
    ("password", "Short-1!"),
    ("password", "A" * 60 + "a" * 60 + "1!" * 5),
    ("password", "no-upper-case-42!"),
    ("password", "NO-LOWER-CASE-42!"),
    ("password", "No-Digits-At-All!"),
    ("password", "NoSpecials12345"),
    ("email", "not-an-email"),
    ("email", "two@@example.org"),
    ("email", "spaces in@example.org"),
    ("email", "a" * 250 + "@example.org"),
    ("email", "javascript:alert(1)@example.org"),
    ("email", "newline@example.org\n"),
    ("first_name", ""),
    ("first_name", "x" * 51),
    ("first_name", "R2D2"),
    ("first_name", "<script>alert(1)</script>"),
    ("last_name", "<iframe src=x>"),
    ("last_name", "Smith;drop"),
    ("phone", "12345"),
    ("phone", "1" * 16),
    ("phone", "555-CALL-NOW"),
    ("phone", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660"),
    ("date_of_birth", "12/10/1990"),
    ("date_of_birth", "1990-02-30"),
    ("date_of_birth", _years_ago(13, days=1)),
    ("date_of_birth", _years_ago(121)),
    ("date_of_birth", (datetime.now(UTC).date() + timedelta(days=1)).isoformat()),
]


def _refused_fields(call: object) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code(), [field for field, _ in field_violations(caught.value)]


@pytest.mark.parametrize(("field", "value"), REFUSED_REGISTRATIONS)
def test_registration_rule(users: user_pb2_grpc.UserServiceStub, field: str, value: str) -> None:
    request = registration(**{field: value})
    code, fields = _refused_fields(lambda: users.Register(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == [field]
    # Nothing was claimed: the same username registers once the field is fixed.
    good = registration(username=request.username) if field != "username" else registration()
    users.Register(good)


ACCEPTED_EDGES = [
    ("username", "abc_12"),
    ("username", "A" * 30),
    ("password", "Aa1!" * 3),
    ("password", ("Aa1!" * 32)[:128]),
    ("first_name", "Jean-Luc"),
    ("first_name", "Zoë"),
    ("last_name", "D'Arcy"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "123456789012345"),
    ("date_of_birth", _years_ago(13)),
    ("date_of_birth", _years_ago(120)),
]


@pytest.mark.parametrize(("field", "value"), ACCEPTED_EDGES)
def test_registration_edges_are_accepted(
    users: user_pb2_grpc.UserServiceStub, field: str, value: str
) -> None:
    if field == "username":
        value = value[:-6] + registration().username[-6:]
    users.Register(registration(**{field: value}))


def test_all_bad_fields_are_named_at_once(users: user_pb2_grpc.UserServiceStub) -> None:
    request = registration(username="x", email="nope", password="weak", first_name="1")
    code, fields = _refused_fields(lambda: users.Register(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields) == ["email", "first_name", "password", "username"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "<b>bold</b>"),
        ("last_name", ""),
        ("email", "broken@"),
        ("phone", "999"),
        ("date_of_birth", "yesterday"),
    ],
)
def test_profile_update_rule(users: user_pb2_grpc.UserServiceStub, field: str, value: str) -> None:
    _, tokens = register_and_login(users)
    code, fields = _refused_fields(
        lambda: users.UpdateProfile(
            user_pb2.UpdateProfileRequest(**{field: value}),  # type: ignore[arg-type]
            metadata=bearer(tokens.access_token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == [field]
    profile = users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(tokens.access_token))
    assert profile.profile.first_name == "Ada"


def test_new_password_follows_the_password_rule(users: user_pb2_grpc.UserServiceStub) -> None:
    request, tokens = register_and_login(users)
    code, fields = _refused_fields(
        lambda: users.ChangePassword(
            user_pb2.ChangePasswordRequest(current_password=request.password, new_password="weak"),
            metadata=bearer(tokens.access_token),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == ["new_password"]


def test_login_with_empty_fields_is_invalid_not_unauthenticated(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    code, fields = _refused_fields(lambda: users.Login(user_pb2.LoginRequest()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields) == ["password", "username"]
