"""The rules of users, profiles and sessions: pure functions and dataclasses, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime

from common.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{6,30}$")
PASSWORD_MIN, PASSWORD_MAX = 12, 128
PASSWORD_SPECIALS = "!@#$%^&*()-_=+"
EMAIL_MAX = 255
# One @, no spaces or angle brackets, a dotted domain with a 2+ letter top level.
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")
NAME_MAX = 50
PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")
# ASCII digits only: \d would also take other scripts' digits.
PHONE_DIGITS = re.compile(r"\+?[0-9]{10,15}")
AGE_MIN, AGE_MAX = 13, 120
# Patterns are applied with fullmatch: `$` would let a trailing newline through.
# Markup is refused outright rather than escaped: nothing a browser could run is stored.
MARKUP_PATTERN = re.compile(
    r"<\s*[A-Za-z!/?]|javascript\s*:|vbscript\s*:|data\s*:\s*text/html|\bon[a-z]+\s*=",
    re.IGNORECASE,
)


class UsernameTaken(AlreadyExists):
    reason = "USERNAME_TAKEN"


class EmailTaken(AlreadyExists):
    reason = "EMAIL_TAKEN"


class InvalidCredentials(Unauthenticated):
    reason = "INVALID_CREDENTIALS"


class WrongPassword(Unauthenticated):
    reason = "WRONG_PASSWORD"


class SessionRevoked(Unauthenticated):
    reason = "SESSION_REVOKED"


class RefreshTokenReused(Unauthenticated):
    reason = "REFRESH_TOKEN_REUSED"


class LoginThrottled(PermissionDenied):
    """Too many failed logins for this client address or username (API.md: 403
    `AUTH_004` with Retry-After); the reason is the REST code itself."""

    reason = "AUTH_004"


class UserNotFound(NotFound):
    reason = "USER_NOT_FOUND"


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    email: str
    password_hash: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: date | None
    marketing_emails_consent: bool
    role: str
    created_at: datetime
    updated_at: datetime
    version: int
    # Set when the account was closed: the fields above are then a tombstone.
    closed_at: datetime | None = None


# What a closed account's personal fields become (API.md: account/close).
TOMBSTONE = "(erased)"


def tombstone(user: User, now: datetime) -> User:
    """The user with every personal field erased, closed at `now`.

    Kept: the id (the financial records are keyed by it), the role and the creation
    time. The password hash goes too: nothing can log in as a closed account.
    """
    return replace(
        user,
        username=TOMBSTONE,
        email=TOMBSTONE,
        password_hash=TOMBSTONE,
        first_name=TOMBSTONE,
        last_name=TOMBSTONE,
        phone=None,
        date_of_birth=None,
        marketing_emails_consent=False,
        updated_at=now,
        version=user.version + 1,
        closed_at=now,
    )


@dataclass(frozen=True)
class Session:
    """One login and every token pair rotated from it (a refresh family)."""

    session_id: str
    user_id: str
    current_refresh_id: str
    revoked: bool
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Registration:
    username: str
    email: str
    password: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: date | None
    marketing_emails_consent: bool


@dataclass(frozen=True)
class ProfileChanges:
    """Fields to change; None means leave as is, "" (phone, birth date) means clear."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    date_of_birth: str | None = None
    marketing_emails_consent: bool | None = None


class _Violations:
    """Collects every problem of one request so the caller sees them all at once."""

    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def check(self, field: str, problem: str | None) -> None:
        if problem:
            self.found.append(FieldViolation(field, problem))

    def raise_if_any(self) -> None:
        if self.found:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self.found)
            raise InvalidArgument(summary, reason="VALIDATION_FAILED", violations=tuple(self.found))


def markup_problem(value: str) -> str | None:
    return "markup is not allowed" if MARKUP_PATTERN.search(value) else None


def username_problem(raw: str) -> str | None:
    if markup_problem(raw):
        return markup_problem(raw)
    if not USERNAME_PATTERN.fullmatch(raw):
        return "must be 6-30 letters, digits or underscores"
    return None


def password_problem(raw: str) -> str | None:
    if not PASSWORD_MIN <= len(raw) <= PASSWORD_MAX:
        return f"must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"
    missing = [
        label
        for label, present in (
            ("an upper-case letter", any(c.isupper() for c in raw)),
            ("a lower-case letter", any(c.islower() for c in raw)),
            ("a digit", any(c.isdigit() for c in raw)),
            (f"one of {PASSWORD_SPECIALS}", any(c in PASSWORD_SPECIALS for c in raw)),
        )
        if not present
    ]
    return f"must contain {', '.join(missing)}" if missing else None


def email_problem(raw: str) -> str | None:
    if markup_problem(raw):
        return markup_problem(raw)
    if len(raw) > EMAIL_MAX:
        return f"must be at most {EMAIL_MAX} characters"
    if not EMAIL_PATTERN.fullmatch(raw) or ".." in raw:
        return "must be a valid email address"
    return None


def name_problem(raw: str) -> str | None:
    if markup_problem(raw):
        return markup_problem(raw)
    stripped = raw.strip()
    if not 1 <= len(stripped) <= NAME_MAX:
        return f"must be 1-{NAME_MAX} characters"
    if not all(c.isalpha() or c in " '-" for c in stripped):
        return "may hold only letters, spaces, apostrophes and hyphens"
    return None


def normalize_name(raw: str) -> str:
    return " ".join(raw.split()).title()


def phone_digits(raw: str) -> str | None:
    """The digits of a phone number, or None when it is not 10-15 digits."""
    compact = PHONE_SEPARATORS.sub("", raw)
    return compact.lstrip("+") if PHONE_DIGITS.fullmatch(compact) else None


def phone_problem(raw: str) -> str | None:
    if markup_problem(raw):
        return markup_problem(raw)
    return None if phone_digits(raw) else "must be 10-15 digits once separators are removed"


def age_on(birth: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (birth.month, birth.day)
    return today.year - birth.year - int(before_birthday)


_CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_birth_date(raw: str, today: date) -> tuple[date | None, str | None]:
    if markup_problem(raw):
        return None, markup_problem(raw)
    # Exactly YYYY-MM-DD in ASCII digits: date.fromisoformat alone also takes other
    # ISO 8601 forms ("20000101", "2000W011" is 2000-01-03).
    if not _CALENDAR_DATE.fullmatch(raw):
        return None, "must be a date as YYYY-MM-DD"
    try:
        birth = date.fromisoformat(raw)
    except ValueError:
        return None, "must be a date as YYYY-MM-DD"
    if not AGE_MIN <= age_on(birth, today) <= AGE_MAX:
        return None, f"age must be {AGE_MIN}-{AGE_MAX} years"
    return birth, None


def validate_registration(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    phone: str | None,
    date_of_birth: str | None,
    marketing_emails_consent: bool | None,
    today: date,
) -> Registration:
    violations = _Violations()
    violations.check("username", username_problem(username))
    violations.check("email", email_problem(email))
    violations.check("password", password_problem(password))
    violations.check("first_name", name_problem(first_name))
    violations.check("last_name", name_problem(last_name))
    if phone:
        violations.check("phone", phone_problem(phone))
    birth: date | None = None
    if date_of_birth:
        birth, problem = parse_birth_date(date_of_birth, today)
        violations.check("date_of_birth", problem)
    violations.raise_if_any()
    return Registration(
        username=username.lower(),
        email=email.lower(),
        password=password,
        first_name=normalize_name(first_name),
        last_name=normalize_name(last_name),
        phone=phone_digits(phone) if phone else None,
        date_of_birth=birth,
        marketing_emails_consent=bool(marketing_emails_consent),
    )


def validate_login(username: str, password: str) -> str:
    """The lookup key of a login; only emptiness and absurd sizes are refused here."""
    violations = _Violations()
    if not username or len(username) > 255:
        violations.check("username", "is required")
    if not password or len(password) > 1024:
        violations.check("password", "is required")
    violations.raise_if_any()
    return username.lower()


def validate_new_password(password: str) -> None:
    violations = _Violations()
    violations.check("new_password", password_problem(password))
    violations.raise_if_any()


def apply_profile_changes(user: User, changes: ProfileChanges, now: datetime) -> User:
    """The user with the changes applied, or InvalidArgument naming every bad field.

    No field given, or only the values the user already has: the same `user` object,
    so that nothing is written and `updated_at` stays."""
    violations = _Violations()
    updates: dict[str, object] = {}
    for field in ("first_name", "last_name"):
        value = getattr(changes, field)
        if value is not None:
            violations.check(field, name_problem(value))
            updates[field] = normalize_name(value)
    if changes.email is not None:
        violations.check("email", email_problem(changes.email))
        updates["email"] = changes.email.lower()
    if changes.phone is not None:
        if changes.phone:
            violations.check("phone", phone_problem(changes.phone))
        updates["phone"] = phone_digits(changes.phone) if changes.phone else None
    if changes.date_of_birth is not None:
        birth = None
        if changes.date_of_birth:
            birth, problem = parse_birth_date(changes.date_of_birth, now.date())
            violations.check("date_of_birth", problem)
        updates["date_of_birth"] = birth
    if changes.marketing_emails_consent is not None:
        updates["marketing_emails_consent"] = changes.marketing_emails_consent
    violations.raise_if_any()
    if all(getattr(user, name) == value for name, value in updates.items()):
        return user  # nothing changes, so neither does updated_at
    return replace(user, **updates, updated_at=now)  # type: ignore[arg-type]


def sessions_to_revoke(sessions: Iterable[Session], keep_session_id: str) -> list[Session]:
    """Every live session but the one that asked (a password change keeps its caller)."""
    return [s for s in sessions if not s.revoked and s.session_id != keep_session_id]
