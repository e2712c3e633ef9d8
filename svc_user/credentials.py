"""The signing key, token minting and password hashing of svc_user.

Access tokens are EdDSA (Ed25519) JWTs; only svc_user holds the private key, every
service verifies with the public key it publishes (JWKS). Passwords are hashed with
Argon2id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import argon2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.tokens import ACCESS, ALGORITHM, REFRESH


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("JWT_PRIVATE_KEY_FILE must hold an Ed25519 private key (PEM, PKCS#8)")
    return key


def new_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class TokenIssuer:
    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
    ) -> None:
        self._private_key = private_key
        self.public_key: Ed25519PublicKey = private_key.public_key()
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._x = _b64url(raw)
        # RFC 7638 thumbprint: the key id changes exactly when the key does.
        canonical = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": self._x}, separators=(",", ":")
        )
        self.kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_seconds = access_ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds

    def jwks(self) -> list[dict[str, str]]:
        return [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self._x,
                "kid": self.kid,
                "alg": ALGORITHM,
                "use": "sig",
            }
        ]

    def resolve(self, kid: str) -> Ed25519PublicKey | None:
        return self.public_key if kid == self.kid else None

    def _sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def issue(
        self,
        *,
        user_id: str,
        role: str,
        session_id: str,
        access_id: str,
        refresh_id: str,
        now: datetime,
    ) -> TokenPair:
        common = {"iss": self.issuer, "aud": self.audience, "sub": user_id, "sid": session_id}
        issued = int(now.timestamp())
        access = self._sign(
            {
                **common,
                "role": role,
                "jti": access_id,
                "iat": issued,
                "exp": issued + self.access_ttl_seconds,
                "type": ACCESS,
            }
        )
        refresh = self._sign(
            {
                **common,
                "jti": refresh_id,
                "iat": issued,
                "exp": issued + self.refresh_ttl_seconds,
                "type": REFRESH,
            }
        )
        return TokenPair(access, refresh, self.access_ttl_seconds)

    def refresh_expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.refresh_ttl_seconds)


class PasswordHasher:
    """Argon2id; `verify_unknown` spends the same work on a hash no password matches.

    At most `max_concurrent` hashes run at once: each holds `memory_kib` of memory and a
    core, so a burst of logins queues here instead of exhausting the machine.
    """

    def __init__(
        self, time_cost: int, memory_kib: int, parallelism: int, max_concurrent: int = 2
    ) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._argon = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._decoy = self._argon.hash(_b64url(hashlib.sha256(b"decoy").digest()) + "!Aa1")

    def hash(self, password: str) -> str:
        with self._slots:
            return str(self._argon.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            with self._slots:
                return bool(self._argon.verify(password_hash, password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def verify_unknown(self, password: str) -> bool:
        self.verify(self._decoy, password)
        return False
