"""Register, log in, read the profile, refresh, log out: as a client sees it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from common.grpc_errors import error_info
from tests.user_service import bearer, outcome, register_and_login, registration


def refused_code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()


def test_register_login_profile_refresh_logout(users: user_pb2_grpc.UserServiceStub) -> None:
    request = registration(
        username="Ada_Lovelace_" + registration().username[-6:],
        email="Ada.Lovelace+" + registration().username[-6:] + "@Example.ORG",
        first_name="  ada   maria ",
        last_name="o'brien-smith",
        phone="+1 (555) 010-2030",
        date_of_birth="1990-12-10",
        marketing_emails_consent=True,
    )
    created = users.Register(request, timeout=10)
    assert created.message == "User registered successfully"

    tokens = users.Login(
        user_pb2.LoginRequest(username=request.username.upper(), password=request.password)
    )
    assert tokens.token_type == "bearer"
    assert tokens.expires_in == 3600

    profile = users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(tokens.access_token))
    assert profile.profile.username == request.username.lower()
    assert profile.profile.email == request.email.lower()
    assert profile.profile.first_name == "Ada Maria"
    assert profile.profile.last_name == "O'Brien-Smith"
    assert profile.profile.phone == "15550102030"
    assert profile.profile.date_of_birth == "1990-12-10"
    assert profile.profile.marketing_emails_consent is True
    assert profile.profile.created_at.seconds > 0

    rotated = users.RefreshToken(user_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token))
    assert rotated.refresh_token != tokens.refresh_token
    users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(rotated.access_token))

    logout = users.Logout(user_pb2.LogoutRequest(), metadata=bearer(rotated.access_token))
    assert logout.message == "Logged out successfully"

    for access in (rotated.access_token, tokens.access_token):
        code = refused_code(
            lambda a=access: users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(a))
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED
    code = refused_code(
        lambda: users.RefreshToken(
            user_pb2.RefreshTokenRequest(refresh_token=rotated.refresh_token)
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_reusing_a_spent_refresh_token_revokes_the_family(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    _, first = register_and_login(users)
    second = users.RefreshToken(user_pb2.RefreshTokenRequest(refresh_token=first.refresh_token))

    with pytest.raises(grpc.RpcError) as caught:
        users.RefreshToken(user_pb2.RefreshTokenRequest(refresh_token=first.refresh_token))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(caught.value)
    assert info is not None
    assert info.reason == "REFRESH_TOKEN_REUSED"

    # The thief's replay ended the family: the legitimate holder is out too.
    code = refused_code(
        lambda: users.RefreshToken(user_pb2.RefreshTokenRequest(refresh_token=second.refresh_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code = refused_code(
        lambda: users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(second.access_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_other_sessions_survive_a_logout(users: user_pb2_grpc.UserServiceStub) -> None:
    request, laptop = register_and_login(users)
    phone = users.Login(user_pb2.LoginRequest(username=request.username, password=request.password))
    users.Logout(user_pb2.LogoutRequest(), metadata=bearer(laptop.access_token))
    still = users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(phone.access_token))
    assert still.profile.username == request.username


def test_unknown_user_and_wrong_password_get_the_same_answer(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    request, _ = register_and_login(users)
    answers = []
    for username, password in (
        (request.username, "Wrong-Password-99!"),
        ("nobody_" + request.username[-10:], "Wrong-Password-99!"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            users.Login(user_pb2.LoginRequest(username=username, password=password))
        info = error_info(caught.value)
        answers.append((caught.value.code(), caught.value.details(), info and info.reason))
    assert answers[0] == answers[1]
    assert answers[0][0] == grpc.StatusCode.UNAUTHENTICATED


def test_password_change_keeps_the_caller_and_revokes_other_sessions(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    request, caller = register_and_login(users)
    other = users.Login(user_pb2.LoginRequest(username=request.username, password=request.password))

    wrong = refused_code(
        lambda: users.ChangePassword(
            user_pb2.ChangePasswordRequest(
                current_password="Not-The-Password-1!", new_password="Brand-New-Pass-77!"
            ),
            metadata=bearer(caller.access_token),
        )
    )
    assert wrong == grpc.StatusCode.UNAUTHENTICATED

    users.ChangePassword(
        user_pb2.ChangePasswordRequest(
            current_password=request.password, new_password="Brand-New-Pass-77!"
        ),
        metadata=bearer(caller.access_token),
    )
    users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(caller.access_token))
    for refused in (
        lambda: users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(other.access_token)),
        lambda: users.RefreshToken(user_pb2.RefreshTokenRequest(refresh_token=other.refresh_token)),
        lambda: users.Login(
            user_pb2.LoginRequest(username=request.username, password=request.password)
        ),
    ):
        assert refused_code(refused) == grpc.StatusCode.UNAUTHENTICATED
    users.Login(user_pb2.LoginRequest(username=request.username, password="Brand-New-Pass-77!"))


def test_profile_update_changes_only_given_fields(users: user_pb2_grpc.UserServiceStub) -> None:
    request, tokens = register_and_login(users, phone="5550102030")
    new_email = "renamed." + request.email
    updated = users.UpdateProfile(
        user_pb2.UpdateProfileRequest(last_name="byron", email=new_email.upper()),
        metadata=bearer(tokens.access_token),
    )
    assert updated.message == "Profile updated successfully"
    assert updated.user.last_name == "Byron"
    assert updated.user.first_name == "Ada"
    assert updated.user.email == new_email.lower()
    assert updated.user.phone == "5550102030"

    # The old address is free again; the new one is taken.
    register_and_login(users, email=request.email)
    code = refused_code(lambda: users.Register(registration(email=new_email)))
    assert code == grpc.StatusCode.ALREADY_EXISTS

    cleared = users.UpdateProfile(
        user_pb2.UpdateProfileRequest(phone=""), metadata=bearer(tokens.access_token)
    )
    assert cleared.user.phone == ""


def test_profile_email_change_to_a_taken_address_is_refused(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    first, _ = register_and_login(users)
    _, tokens = register_and_login(users)
    with pytest.raises(grpc.RpcError) as caught:
        users.UpdateProfile(
            user_pb2.UpdateProfileRequest(email=first.email, first_name="Changed"),
            metadata=bearer(tokens.access_token),
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    profile = users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(tokens.access_token))
    assert profile.profile.first_name == "Ada"


def test_a_password_change_racing_profile_updates_is_not_lost(
    users: user_pb2_grpc.UserServiceStub,
) -> None:
    """Each write is conditioned on the version read: a profile update that lost the
    race to the password change re-reads, so neither undoes the other."""
    account, tokens = register_and_login(users)
    auth = bearer(tokens.access_token)
    new_password = "Another-Horse-43!"
    names = ["Ada", "Bea", "Cleo", "Dora", "Eve", "Fay", "Gwen"]

    def change_password() -> object:
        request = user_pb2.ChangePasswordRequest(
            current_password=account.password, new_password=new_password
        )
        return users.ChangePassword(request, metadata=auth, timeout=30)

    def rename(name: str) -> Callable[[], object]:
        request = user_pb2.UpdateProfileRequest(first_name=name)
        return lambda: users.UpdateProfile(request, metadata=auth, timeout=30)

    calls = [change_password, *(rename(name) for name in names)]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        outcomes = list(pool.map(outcome, calls))
    assert set(outcomes) <= {"OK", "ABORTED:CONCURRENT_UPDATE"}, outcomes

    # The password is the new one exactly when the change said so.
    def login(password: str) -> str:
        request = user_pb2.LoginRequest(username=account.username, password=password)
        return outcome(lambda: users.Login(request, timeout=30))

    changed = outcomes[0] == "OK"
    refused = "UNAUTHENTICATED:INVALID_CREDENTIALS"
    assert login(new_password) == ("OK" if changed else refused)
    assert login(account.password) == (refused if changed else "OK")
    renamed = [name for name, said in zip(names, outcomes[1:], strict=True) if said == "OK"]
    profile = users.GetProfile(user_pb2.GetProfileRequest(), metadata=auth).profile
    assert profile.first_name in renamed
