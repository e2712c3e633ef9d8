"""The use cases of svc_user; ports (store, hasher, tokens, revocations, clock, ids)
come in as arguments so tests can swap any of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from trading.v1 import order_pb2

from common import audit
from common.context import Identity
from common.errors import Aborted, Unauthenticated
from common.revocation import Revocation, RevocationList
from common.tokens import REFRESH, decode_token
from svc_user import metrics
from svc_user.credentials import PasswordHasher, TokenIssuer, TokenPair
from svc_user.domain import (
    EmailTaken,
    InvalidCredentials,
    LoginThrottled,
    ProfileChanges,
    RefreshTokenReused,
    Session,
    SessionRevoked,
    User,
    UsernameTaken,
    UserNotFound,
    WrongPassword,
    apply_profile_changes,
    sessions_to_revoke,
    tombstone,
    validate_login,
    validate_new_password,
    validate_registration,
)
from svc_user.store import UserStore
from svc_user.throttle import LoginThrottle
from svc_user.trading import NoTradingAccounts, TradingAccounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataExport:
    """Everything held about one user (API.md: GET /api/v1/auth/export)."""

    user: User
    sessions: list[Session]
    # The trading account as svc_order exports it (opaque here; server.py embeds it).
    trading: order_pb2.TradingAccountExport
    exported_at: datetime


# Writes that lose a version race are retried this many times before ABORTED.
MAX_ATTEMPTS = 5
# Read in place of a user when a username is unknown, so both paths cost the same.
_ABSENT_USER_ID = "0" * 32


class UserService:
    def __init__(
        self,
        *,
        store: UserStore,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        revocations: RevocationList,
        throttle: LoginThrottle,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        trading: TradingAccounts | None = None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._tokens = tokens
        self._revocations = revocations
        self._throttle = throttle
        self._clock = clock
        self._new_id = new_id
        self._trading: TradingAccounts = trading or NoTradingAccounts()

    # Registration -------------------------------------------------------------

    def register(
        self,
        *,
        username: str,
        email: str,
        password: str,
        first_name: str,
        last_name: str,
        phone: str | None,
        date_of_birth: str | None,
        marketing_emails_consent: bool | None,
    ) -> User:
        now = self._clock()
        registration = validate_registration(
            username=username,
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
            phone=phone,
            date_of_birth=date_of_birth,
            marketing_emails_consent=marketing_emails_consent,
            today=now.date(),
        )
        user_id = self._new_id()
        if not self._store.claim("USERNAME", registration.username, user_id, now):
            raise UsernameTaken("username is already taken")
        claimed_email = False
        try:
            if not self._store.claim("EMAIL", registration.email, user_id, now):
                raise EmailTaken("email is already registered")
            claimed_email = True
            user = User(
                user_id=user_id,
                username=registration.username,
                email=registration.email,
                password_hash=self._hasher.hash(registration.password),
                first_name=registration.first_name,
                last_name=registration.last_name,
                phone=registration.phone,
                date_of_birth=registration.date_of_birth,
                marketing_emails_consent=registration.marketing_emails_consent,
                role="user",
                created_at=now,
                updated_at=now,
                version=1,
            )
            self._store.create_user(user)
        except BaseException:
            # A failed registration leaves no claim behind.
            if claimed_email:
                self._store.release_claim("EMAIL", registration.email, user_id)
            self._store.release_claim("USERNAME", registration.username, user_id)
            raise
        log.info("user registered", extra={"user_id": user_id})
        return user

    # Sessions -----------------------------------------------------------------

    def login(self, username: str, password: str, client_address: str) -> TokenPair:
        """Tokens for a right password. Each wrong one (unknown user included) counts
        against the client address and the username; an invalid request (422) does
        not. Raises LoginThrottled while either is blocked (see `_verified`)."""
        key = validate_login(username, password)
        user = self._verified(client_address, key, password, lambda: self._find_user(key))
        if user is None:
            raise InvalidCredentials("invalid username or password")
        now = self._clock()
        session_id, refresh_id = self._new_id(), self._new_id()
        self._store.put_session(
            Session(
                session_id=session_id,
                user_id=user.user_id,
                current_refresh_id=refresh_id,
                revoked=False,
                created_at=now,
                expires_at=self._tokens.refresh_expiry(now),
            )
        )
        return self._issue(user, session_id, refresh_id, now)

    def _find_user(self, username: str) -> User | None:
        user_id = self._store.claim_holder("USERNAME", username)
        return self._store.get_user(user_id or _ABSENT_USER_ID)

    def _verified(
        self,
        client_address: str,
        username: str,
        password: str,
        find_user: Callable[[], User | None],
    ) -> User | None:
        """The user when `password` is theirs, else None; the one gate of every check
        of a password against a stored hash (Login, ChangePassword's and
        CloseAccount's current password), so that no RPC guesses around the login
        throttle. While the client address or the username is blocked it raises
        LoginThrottled (403 AUTH_004, Retry-After) before looking; each wrong
        password (unknown user included, at the same cost) counts one failure for
        both. Raises Unavailable LOGIN_UNAVAILABLE when the throttle cannot count."""
        blocked = self._throttle.blocked_for(client_address, username)
        if blocked:
            raise LoginThrottled(
                "too many failed password attempts; try again later",
                retry_after_seconds=blocked,
            )
        user = find_user()
        if user is None:
            self._hasher.verify_unknown(password)
        elif self._hasher.verify(user.password_hash, password):
            return user
        self._throttle.failed(client_address, username)
        return None

    def refresh(self, refresh_token: str) -> TokenPair:
        """A new token pair for a refresh token. Unauthenticated: TOKEN_MISSING when
        none is given (empty), TOKEN_INVALID when it is not a valid refresh token."""
        if not refresh_token:
            raise Unauthenticated("a refresh token is required", reason="TOKEN_MISSING")
        claims = decode_token(
            refresh_token,
            expected_type=REFRESH,
            issuer=self._tokens.issuer,
            audience=self._tokens.audience,
            resolve_key=self._tokens.resolve,
        )
        user_id, session_id, spent_id = str(claims["sub"]), str(claims["sid"]), str(claims["jti"])
        audit.note(user_id=user_id, session_id=session_id)
        session = self._store.get_session(user_id, session_id)
        if session is None or session.revoked:
            raise SessionRevoked("session has ended; log in again")
        new_refresh_id = self._new_id()
        if not self._store.rotate_session(user_id, session_id, spent_id, new_refresh_id):
            # A spent token came back: someone holds a copy. End the whole family.
            self._end_session(user_id, session_id)
            log.warning("refresh token reuse", extra={"user_id": user_id, "session_id": session_id})
            raise RefreshTokenReused("refresh token already used; session revoked")
        user = self._store.get_user(user_id)
        if user is None:
            raise SessionRevoked("session has ended; log in again")
        return self._issue(user, session_id, new_refresh_id, self._clock())

    def logout(self, caller: Identity) -> None:
        self._revoke(Revocation("token", caller.token_id, caller.expires_at))
        self._end_session(caller.user_id, caller.session_id)

    def _end_session(self, user_id: str, session_id: str) -> None:
        # Every service refuses the session's access tokens at once (Redis); the
        # session item refuses its refresh tokens for good. Access tokens die within
        # their TTL, which is as long as the revocation needs to be in force.
        now = int(self._clock().timestamp())
        self._revoke(Revocation("session", session_id, now + self._tokens.access_ttl_seconds))
        self._store.revoke_session(user_id, session_id)

    def _revoke(self, revocation: Revocation) -> None:
        # The record first: Redis is only the fast path and may lose its data, and is
        # then restored from the record (revocations_in_force).
        self._store.record_revocation(revocation)
        self._revocations.revoke(revocation)
        metrics.tokens_revoked.labels(revocation.kind).inc()

    def revocations_in_force(self) -> list[Revocation]:
        """The record of every revocation that still refuses a token."""
        now = int(self._clock().timestamp())
        return self._store.revocations_in_force(now, self._tokens.access_ttl_seconds)

    def _issue(self, user: User, session_id: str, refresh_id: str, now: datetime) -> TokenPair:
        audit.note(user_id=user.user_id, session_id=session_id)
        return self._tokens.issue(
            user_id=user.user_id,
            role=user.role,
            session_id=session_id,
            access_id=self._new_id(),
            refresh_id=refresh_id,
            now=now,
        )

    # Profile ------------------------------------------------------------------

    def profile(self, caller: Identity) -> User:
        user = self._store.get_user(caller.user_id)
        if user is None:
            raise UserNotFound("user not found")
        return user

    def update_profile(self, caller: Identity, changes: ProfileChanges) -> tuple[User, bool]:
        """The profile after the changes, and whether anything changed (when nothing
        does, nothing is written)."""
        for _ in range(MAX_ATTEMPTS):
            user = self.profile(caller)
            now = self._clock()
            updated = apply_profile_changes(user, changes, now)
            if updated is user:
                return user, False
            updated = replace(updated, version=user.version + 1)
            new_email = updated.email if updated.email != user.email else None
            if new_email and not self._store.claim("EMAIL", new_email, user.user_id, now):
                raise EmailTaken("email is already registered")
            try:
                saved = self._store.replace_user(updated, expected_version=user.version)
            except BaseException:
                if new_email:
                    self._store.release_claim("EMAIL", new_email, user.user_id)
                raise
            if saved:
                if new_email:
                    self._store.release_claim("EMAIL", user.email, user.user_id)
                return updated, True
            if new_email:
                self._store.release_claim("EMAIL", new_email, user.user_id)
        raise Aborted("profile changed concurrently; try again", reason="CONCURRENT_UPDATE")

    def change_password(
        self, caller: Identity, current_password: str, new_password: str, client_address: str
    ) -> None:
        """Sets a new password and ends every other session. The current password is
        checked through the login throttle (`_verified`): WrongPassword, or
        LoginThrottled while the caller's username or address is blocked."""
        user = self._check_current_password(caller, current_password, client_address)
        validate_new_password(new_password)
        new_hash = self._hasher.hash(new_password)
        for _ in range(MAX_ATTEMPTS):
            updated = replace(
                user, password_hash=new_hash, updated_at=self._clock(), version=user.version + 1
            )
            if self._store.replace_user(updated, expected_version=user.version):
                break
            user = self.profile(caller)
        else:
            raise Aborted("profile changed concurrently; try again", reason="CONCURRENT_UPDATE")
        for session in sessions_to_revoke(
            self._store.list_sessions(user.user_id), caller.session_id
        ):
            self._end_session(user.user_id, session.session_id)

    def _check_current_password(
        self, caller: Identity, current_password: str, client_address: str
    ) -> User:
        user = self.profile(caller)
        if self._verified(client_address, user.username, current_password, lambda: user) is None:
            raise WrongPassword("current password is wrong")
        return user

    # Your data: export and closing ---------------------------------------------

    def export(self, caller: Identity) -> DataExport:
        """Everything held about the caller: profile, sessions, the trading account."""
        user = self.profile(caller)
        sessions = sorted(self._store.list_sessions(user.user_id), key=lambda s: s.created_at)
        return DataExport(user, sessions, self._trading.export(), self._clock())

    def close_account(self, caller: Identity, current_password: str, client_address: str) -> int:
        """Closes the caller's account; the number of sessions it ended.

        In this order, so that a crash at any step leaves a state a retry finishes:
        the password (through the login throttle, as in change_password); the trading
        account (refused while money or assets are in it: Aborted ACCOUNT_NOT_EMPTY);
        the tombstone; the username and email freed; every session and the calling
        token revoked.
        """
        user = self._check_current_password(caller, current_password, client_address)
        self._trading.close()
        for _ in range(MAX_ATTEMPTS):
            if self._store.replace_user(tombstone(user, self._clock()), user.version):
                break
            user = self.profile(caller)
        else:
            raise Aborted("profile changed concurrently; try again", reason="CONCURRENT_UPDATE")
        self._store.release_claim("USERNAME", user.username, user.user_id)
        self._store.release_claim("EMAIL", user.email, user.user_id)
        self._revoke(Revocation("token", caller.token_id, caller.expires_at))
        ended = [s for s in self._store.list_sessions(user.user_id) if not s.revoked]
        for session in ended:
            self._end_session(user.user_id, session.session_id)
        audit.note(sessions_revoked=len(ended))
        log.info("account closed", extra={"user_id": user.user_id})
        return len(ended)

    def jwks(self) -> list[dict[str, str]]:
        return self._tokens.jwks()
