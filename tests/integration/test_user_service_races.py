"""svc_user's use cases against the real users table when every write loses its race or
fails: a profile update, a password change and a closing give up after MAX_ATTEMPTS
lost races with ABORTED CONCURRENT_UPDATE and leave no email claim behind; a
registration whose user write fails frees both names; a refresh token of a session
whose user is gone ends the session. The rival writes are real conditional writes to
the same item (what another request would do), made just before each of ours."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from trading.v1 import order_pb2

from common.context import Identity
from common.dynamo import Table, make_client
from common.errors import Aborted, Unavailable
from common.redis_clients import redis_client
from common.revocation import RevocationList
from common.server import RunningServer
from svc_user.config import UserSettings
from svc_user.credentials import PasswordHasher, TokenIssuer, load_private_key
from svc_user.domain import ProfileChanges, Session, SessionRevoked, User, UserNotFound
from svc_user.service import MAX_ATTEMPTS, UserService
from svc_user.store import DynamoUserStore
from svc_user.throttle import RedisLoginThrottle

PASSWORD = "Correct-Horse-42!"


class RivalledStore(DynamoUserStore):
    """The real store; before each of `rivalled` user writes another request changes
    the same user first (a real version-conditioned write), so ours loses the race.
    `failing` makes the user writes fail instead, as a store that went away does."""

    rivalled = 0
    failing = False
    attempts = 0

    def replace_user(self, user: User, expected_version: int) -> bool:
        self.attempts += 1
        if self.failing:
            raise Unavailable("the store went away", reason="STORE_UNAVAILABLE")
        if self.rivalled:
            self.rivalled -= 1
            current = self.get_user(user.user_id)
            assert current is not None
            rival = replace(current, first_name="Rival", version=current.version + 1)
            assert super().replace_user(rival, current.version)
        return super().replace_user(user, expected_version)

    def create_user(self, user: User) -> None:
        if self.failing:
            raise Unavailable("the store went away", reason="STORE_UNAVAILABLE")
        super().create_user(user)


class EmptyTradingAccount:
    """The trading side of a person who holds nothing: closing it succeeds."""

    def export(self) -> order_pb2.TradingAccountExport:
        return order_pb2.TradingAccountExport()

    def close(self) -> None:
        return None


@pytest.fixture
def store(user_server: RunningServer, user_settings: UserSettings) -> RivalledStore:
    client = make_client(user_settings.dynamodb_endpoint, user_settings.aws_region)
    return RivalledStore(Table(client, user_settings.table_prefix + user_settings.users_table))


@pytest.fixture
def tokens(user_settings: UserSettings) -> TokenIssuer:
    return TokenIssuer(
        load_private_key(user_settings.jwt_private_key_file.read_bytes()),
        issuer=user_settings.jwt_issuer,
        audience=user_settings.jwt_audience,
        access_ttl_seconds=60,
        refresh_ttl_seconds=600,
    )


@pytest.fixture
def service(
    store: RivalledStore, tokens: TokenIssuer, user_settings: UserSettings
) -> Iterator[UserService]:
    redis = redis_client(user_settings.redis_url)
    yield UserService(
        store=store,
        hasher=PasswordHasher(1, 8192, 1),
        tokens=tokens,
        revocations=RevocationList(redis),
        throttle=RedisLoginThrottle(
            redis, f"races-{uuid.uuid4().hex}", max_failures=5, window_seconds=60, block_seconds=60
        ),
        clock=lambda: datetime.now(UTC),
        new_id=lambda: uuid.uuid4().hex,
        trading=EmptyTradingAccount(),
    )
    redis.close()


def register(service: UserService, name: str) -> User:
    return service.register(
        username=name,
        email=f"{name}@example.org",
        password=PASSWORD,
        first_name="Ada",
        last_name="Lovelace",
        phone=None,
        date_of_birth=None,
        marketing_emails_consent=None,
    )


def registered(service: UserService) -> tuple[User, Identity]:
    user = register(service, f"race_{uuid.uuid4().hex[:12]}")
    caller = Identity(
        user_id=user.user_id,
        role=user.role,
        token_id=uuid.uuid4().hex,
        session_id=uuid.uuid4().hex,
        expires_at=int(datetime.now(UTC).timestamp()) + 60,
        raw_token="",
    )
    return user, caller


def test_a_profile_update_that_loses_every_race_aborts_and_frees_the_new_email(
    service: UserService, store: RivalledStore
) -> None:
    user, caller = registered(service)
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.org"
    store.rivalled = MAX_ATTEMPTS
    with pytest.raises(Aborted) as aborted:
        service.update_profile(caller, ProfileChanges(email=new_email))
    assert aborted.value.reason == "CONCURRENT_UPDATE"
    assert store.attempts == MAX_ATTEMPTS
    # The address is free for anyone again; the old one is still the user's.
    assert store.claim_holder("EMAIL", new_email) is None
    assert store.claim_holder("EMAIL", user.email) == user.user_id
    kept = service.profile(caller)
    assert (kept.email, kept.first_name) == (user.email, "Rival")


def test_a_profile_update_that_loses_once_succeeds_on_the_next_try(
    service: UserService, store: RivalledStore
) -> None:
    user, caller = registered(service)
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.org"
    store.rivalled = 1
    updated, changed = service.update_profile(caller, ProfileChanges(email=new_email))
    assert changed
    assert store.attempts == 2
    # The rival's change is kept, ours applied on top of it.
    assert (updated.email, updated.first_name) == (new_email, "Rival")
    assert store.claim_holder("EMAIL", new_email) == user.user_id
    assert store.claim_holder("EMAIL", user.email) is None


def test_a_profile_update_whose_write_fails_frees_the_new_email(
    service: UserService, store: RivalledStore
) -> None:
    user, caller = registered(service)
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.org"
    store.failing = True
    with pytest.raises(Unavailable):
        service.update_profile(caller, ProfileChanges(email=new_email))
    assert store.claim_holder("EMAIL", new_email) is None
    assert store.claim_holder("EMAIL", user.email) == user.user_id


def test_a_password_change_that_loses_every_race_aborts_and_the_old_password_stays(
    service: UserService, store: RivalledStore
) -> None:
    user, caller = registered(service)
    store.rivalled = MAX_ATTEMPTS
    with pytest.raises(Aborted) as aborted:
        service.change_password(caller, PASSWORD, "Another-Horse-43!", "127.0.0.1")
    assert aborted.value.reason == "CONCURRENT_UPDATE"
    assert store.attempts == MAX_ATTEMPTS
    assert service.login(user.username, PASSWORD, "127.0.0.1").access_token


def test_a_closing_that_loses_every_race_aborts_and_the_account_stays_open(
    service: UserService, store: RivalledStore
) -> None:
    user, caller = registered(service)
    store.rivalled = MAX_ATTEMPTS
    with pytest.raises(Aborted) as aborted:
        service.close_account(caller, PASSWORD, "127.0.0.1")
    assert aborted.value.reason == "CONCURRENT_UPDATE"
    assert store.claim_holder("USERNAME", user.username) == user.user_id
    assert service.login(user.username, PASSWORD, "127.0.0.1").access_token


def test_a_registration_whose_user_write_fails_frees_the_username_and_email(
    service: UserService, store: RivalledStore
) -> None:
    name = f"race_{uuid.uuid4().hex[:12]}"
    store.failing = True
    with pytest.raises(Unavailable):
        register(service, name)
    assert store.claim_holder("USERNAME", name) is None
    assert store.claim_holder("EMAIL", f"{name}@example.org") is None


def test_a_refresh_for_a_session_whose_user_is_gone_ends_the_session(
    service: UserService, store: RivalledStore, tokens: TokenIssuer
) -> None:
    now = datetime.now(UTC)
    user_id, session_id, refresh_id = (uuid.uuid4().hex for _ in range(3))
    store.put_session(
        Session(session_id, user_id, refresh_id, False, now, now + timedelta(minutes=10))
    )
    pair = tokens.issue(
        user_id=user_id,
        role="user",
        session_id=session_id,
        access_id=uuid.uuid4().hex,
        refresh_id=refresh_id,
        now=now,
    )
    with pytest.raises(SessionRevoked):
        service.refresh(pair.refresh_token)
    caller = Identity(user_id, "user", uuid.uuid4().hex, session_id, 0, "")
    with pytest.raises(UserNotFound):
        service.profile(caller)
