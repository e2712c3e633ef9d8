"""The verifier remembers tokens it verified (issue #13), and that changes no answer:
a remembered token is refused once revoked, once expired, and once the key that
verified it is retired or replaced; a token differing in one character is not it.
Real Redis for the revocation list; keys published by a JWKS the test controls."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.errors import Unauthenticated
from common.redis_clients import redis_client
from common.revocation import Revocation, RevocationList
from common.tokens import ACCESS, AccessTokenVerifier, JwksKeyResolver

ISSUER = "trading-platform"
AUDIENCE = "trading-api"


def _jwk(kid: str, key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x}


class Jwks:
    """What svc_user publishes, changed by the test: kid -> private key."""

    def __init__(self) -> None:
        self.keys: dict[str, Ed25519PrivateKey] = {"k1": Ed25519PrivateKey.generate()}

    def publish(self) -> list[dict[str, str]]:
        return [_jwk(kid, key) for kid, key in self.keys.items()]

    def sign(self, kid: str, *, lifetime: int = 3600, jti: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "sid": f"s-{uuid.uuid4().hex}",
            "jti": jti or f"a-{uuid.uuid4().hex}",
            "iat": now,
            "exp": now + lifetime,
            "type": ACCESS,
        }
        return jwt.encode(claims, self.keys[kid], algorithm="EdDSA", headers={"kid": kid})


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def revocations(redis_db: redis.Redis) -> RevocationList:
    listed = RevocationList(redis_db)
    # The list is trusted only once marked complete (as svc_user's keeper does at start).
    assert listed.restore(list) or listed.is_complete()
    return listed


@pytest.fixture
def jwks() -> Jwks:
    return Jwks()


@pytest.fixture
def verifier(jwks: Jwks, revocations: RevocationList) -> AccessTokenVerifier:
    # No spacing between refetches: every unknown kid fetches the keys again.
    keys = JwksKeyResolver(jwks.publish, min_refetch_seconds=0)
    return AccessTokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, resolve_key=keys, revocations=revocations
    )


def _refused(verifier: AccessTokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    return caught.value.reason


def test_a_remembered_token_is_refused_once_revoked(
    verifier: AccessTokenVerifier, jwks: Jwks, revocations: RevocationList
) -> None:
    token = jwks.sign("k1")
    identity = verifier.verify(token)
    assert verifier.verify(token) == identity
    revocations.revoke(Revocation("token", identity.token_id, identity.expires_at))
    assert _refused(verifier, token) == "TOKEN_REVOKED"


def test_a_remembered_token_is_refused_once_its_session_is_revoked(
    verifier: AccessTokenVerifier, jwks: Jwks, revocations: RevocationList
) -> None:
    token = jwks.sign("k1")
    identity = verifier.verify(token)
    revocations.revoke(Revocation("session", identity.session_id, identity.expires_at))
    assert _refused(verifier, token) == "TOKEN_REVOKED"


def test_a_remembered_token_expires_on_time(verifier: AccessTokenVerifier, jwks: Jwks) -> None:
    token = jwks.sign("k1", lifetime=1)
    identity = verifier.verify(token)
    time.sleep(max(0.0, identity.expires_at - time.time()) + 0.05)
    assert _refused(verifier, token) == "TOKEN_EXPIRED"


def test_a_remembered_token_is_refused_once_its_key_is_retired(
    verifier: AccessTokenVerifier, jwks: Jwks
) -> None:
    old = jwks.sign("k1")
    verifier.verify(old)
    jwks.keys = {"k2": Ed25519PrivateKey.generate()}
    # A token under the new key makes the verifier fetch the keys again.
    verifier.verify(jwks.sign("k2"))
    assert _refused(verifier, old) == "TOKEN_INVALID"


def test_a_remembered_token_is_refused_once_its_key_is_replaced_under_the_same_id(
    verifier: AccessTokenVerifier, jwks: Jwks
) -> None:
    old = jwks.sign("k1")
    verifier.verify(old)
    jwks.keys = {"k1": Ed25519PrivateKey.generate(), "k2": Ed25519PrivateKey.generate()}
    verifier.verify(jwks.sign("k2"))
    assert _refused(verifier, old) == "TOKEN_INVALID"
    # Tokens of the key in force are verified again and accepted.
    assert verifier.verify(jwks.sign("k1")).user_id == "user-1"


def test_a_token_one_character_off_a_remembered_one_is_refused(
    verifier: AccessTokenVerifier, jwks: Jwks
) -> None:
    token = jwks.sign("k1")
    verifier.verify(token)
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[-2] != "A" else "B").join((signature[:-2], signature[-1:]))
    assert _refused(verifier, f"{head}.{payload}.{flipped}") == "TOKEN_INVALID"
