"""The public keys that verify access tokens, as svc_user publishes them (JWKS).

Every service but svc_user verifies tokens with these; they are fetched once and again
only when a token names a key id not seen before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from trading.v1 import user_pb2, user_pb2_grpc

from common.channels import CallPolicy, make_channel
from common.tokens import JwksKeyResolver, KeyResolver

USER_SERVICE_NAME = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
_JWK_FIELDS = ("kty", "crv", "x", "kid", "alg", "use")


def no_keys(_kid: str) -> None:
    """A resolver that knows no key: no token verifies. Enough for a service whose
    RPCs are all public, which therefore never asks."""


def user_service_channel(address: str, policy: CallPolicy) -> grpc.Channel:
    return make_channel(address, services=[USER_SERVICE_NAME], policy=policy)


def user_service_keys(channel: grpc.Channel) -> KeyResolver:
    users = user_pb2_grpc.UserServiceStub(channel)

    def fetch() -> Sequence[Mapping[str, str]]:
        response = users.GetJwks(user_pb2.GetJwksRequest())
        return [{field: getattr(key, field) for field in _JWK_FIELDS} for key in response.keys]

    return JwksKeyResolver(fetch)
