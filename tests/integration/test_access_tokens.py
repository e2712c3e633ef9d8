"""Tokens that must be refused: tampered, expired, wrong audience, alg none, and more."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from trading.v1 import options_pb2, user_pb2, user_pb2_grpc

from common.grpc_errors import error_info
from svc_user.credentials import load_private_key, new_private_key_pem
from tests.user_service import bearer, register_and_login


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims_and_header(token: str) -> tuple[dict[str, object], dict[str, object]]:
    return jwt.decode(token, options={"verify_signature": False}), jwt.get_unverified_header(token)


def _resign(token: str, key_file: Path, **changes: object) -> str:
    claims, header = _claims_and_header(token)
    claims.update(changes)
    key = load_private_key(key_file.read_bytes())
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": header["kid"]})


def _profile_refused(users: user_pb2_grpc.UserServiceStub, token: str) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(token))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(caught.value)
    assert info is not None
    return str(info.reason)


@pytest.fixture
def access_token(users: user_pb2_grpc.UserServiceStub) -> str:
    return register_and_login(users)[1].access_token


def test_valid_token_is_accepted(users: user_pb2_grpc.UserServiceStub, access_token: str) -> None:
    users.GetProfile(user_pb2.GetProfileRequest(), metadata=bearer(access_token))


def test_tampered_payload(users: user_pb2_grpc.UserServiceStub, access_token: str) -> None:
    head, payload, signature = access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = f"{head}.{_b64(claims)}.{signature}"
    assert _profile_refused(users, forged) == "TOKEN_INVALID"


def test_tampered_signature(users: user_pb2_grpc.UserServiceStub, access_token: str) -> None:
    head, payload, signature = access_token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert _profile_refused(users, f"{head}.{payload}.{flipped}") == "TOKEN_INVALID"


def test_expired(
    users: user_pb2_grpc.UserServiceStub, access_token: str, signing_key_file: Path
) -> None:
    past = int(time.time()) - 7200
    expired = _resign(access_token, signing_key_file, iat=past, exp=past + 3600)
    assert _profile_refused(users, expired) == "TOKEN_EXPIRED"


@pytest.mark.parametrize(("claim", "value"), [("aud", "another-api"), ("iss", "evil-issuer")])
def test_wrong_audience_or_issuer(
    users: user_pb2_grpc.UserServiceStub,
    access_token: str,
    signing_key_file: Path,
    claim: str,
    value: str,
) -> None:
    assert _profile_refused(users, _resign(access_token, signing_key_file, **{claim: value}))


def test_alg_none(users: user_pb2_grpc.UserServiceStub, access_token: str) -> None:
    claims, header = _claims_and_header(access_token)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{_b64(claims)}."
    assert _profile_refused(users, unsigned) == "TOKEN_INVALID"


def test_hmac_signed_with_the_public_key(
    users: user_pb2_grpc.UserServiceStub, access_token: str, signing_key_file: Path
) -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the published key.
    claims, header = _claims_and_header(access_token)
    public = load_private_key(signing_key_file.read_bytes()).public_key()
    secret = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    forged = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": header["kid"]})
    assert _profile_refused(users, forged) == "TOKEN_INVALID"


def test_signed_by_another_key(users: user_pb2_grpc.UserServiceStub, access_token: str) -> None:
    claims, header = _claims_and_header(access_token)
    stranger = load_private_key(new_private_key_pem())
    forged = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": header["kid"]})
    assert _profile_refused(users, forged) == "TOKEN_INVALID"


def test_refresh_token_is_not_an_access_token(users: user_pb2_grpc.UserServiceStub) -> None:
    tokens = register_and_login(users)[1]
    assert _profile_refused(users, tokens.refresh_token) == "TOKEN_INVALID"


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer not.a.jwt"]
)
def test_missing_or_malformed_header(users: user_pb2_grpc.UserServiceStub, header: str) -> None:
    metadata = (("authorization", header),) if header else ()
    with pytest.raises(grpc.RpcError) as caught:
        users.GetProfile(user_pb2.GetProfileRequest(), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_jwks_publishes_the_verifying_key(
    users: user_pb2_grpc.UserServiceStub, access_token: str
) -> None:
    keys = users.GetJwks(user_pb2.GetJwksRequest()).keys
    assert [(k.kty, k.crv, k.alg, k.use) for k in keys] == [("OKP", "Ed25519", "EdDSA", "sig")]
    _, header = _claims_and_header(access_token)
    assert keys[0].kid == header["kid"]
    raw = base64.urlsafe_b64decode(keys[0].x + "==")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    jwt.decode(
        access_token,
        Ed25519PublicKey.from_public_bytes(raw),
        algorithms=["EdDSA"],
        audience="trading-api",
    )


def test_every_protected_method_refuses_a_call_without_token(user_channel: grpc.Channel) -> None:
    service = user_pb2.DESCRIPTOR.services_by_name["UserService"]
    protected = [m for m in service.methods if not m.GetOptions().Extensions[options_pb2.public]]
    assert {m.name for m in protected} >= {
        "Logout",
        "GetProfile",
        "UpdateProfile",
        "ChangePassword",
    }
    for method in protected:
        call: grpc.UnaryUnaryMultiCallable[Any, bytes] = user_channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        request_class = user_pb2.__dict__[method.input_type.name]
        with pytest.raises(grpc.RpcError) as caught:
            call(request_class(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, method.name
