"""The one parser of `Authorization: Bearer <token>` (common/authorization.py): what it
accepts (RFC 9110 credentials, RFC 6750 token68) and the reason of each refusal."""

from __future__ import annotations

import pytest

from common.authorization import INVALID_TOKEN_REASONS, MAX_TOKEN_LENGTH, parse_bearer
from common.errors import ErrorKind, Unauthenticated

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_~+/=="


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER   {TOKEN}",
        f" \tBearer {TOKEN}\t",
    ],
)
def test_the_scheme_is_case_insensitive_and_spaces_around_are_ignored(header: str) -> None:
    assert parse_bearer(header) == TOKEN


@pytest.mark.parametrize("header", [None, "", "   \t"])
def test_no_header_is_a_missing_token(header: str | None) -> None:
    with pytest.raises(Unauthenticated) as refused:
        parse_bearer(header)
    assert refused.value.reason == "TOKEN_MISSING"
    # Nothing was presented: no invalid_token challenge.
    assert refused.value.reason not in INVALID_TOKEN_REASONS


@pytest.mark.parametrize(
    "header",
    [
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        "Bearer",
        "Bearer    ",
        f"Bearer{TOKEN}",
        "Bearer a b",
        "Bearer to=ken",
        "Bearer tok\u00e9n",
        "Bearer ==",
    ],
)
def test_another_scheme_no_token_or_characters_outside_token68_are_invalid(header: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        parse_bearer(header)
    assert refused.value.kind is ErrorKind.UNAUTHENTICATED
    assert refused.value.reason == "TOKEN_INVALID"
    assert refused.value.reason in INVALID_TOKEN_REASONS


def test_a_token_past_the_limit_is_refused_unread_and_one_at_it_is_read() -> None:
    assert parse_bearer("Bearer " + "a" * MAX_TOKEN_LENGTH) == "a" * MAX_TOKEN_LENGTH
    with pytest.raises(Unauthenticated) as refused:
        # Past the limit the characters are not even looked at.
        parse_bearer("Bearer " + "\u00e9" * (MAX_TOKEN_LENGTH + 1))
    assert refused.value.reason == "TOKEN_TOO_LARGE"
    assert refused.value.reason in INVALID_TOKEN_REASONS
