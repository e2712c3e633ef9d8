"""mTLS between the processes and the call graph at each server: svc_user served with
its certificate refuses a caller without one, with one of another CA, and with a valid
one whose identity may not call that method; the calls the graph allows work. A
certificate that is expired, not yet valid, of another CA or half configured stops the
start. On mTLS the client address a caller passes on is believed from the bridge's
certificate only; on plaintext, from the trusted peer addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trading.v1 import user_pb2, user_pb2_grpc

from common.channels import CallPolicy, make_aio_channel, make_channel
from common.client_address import CLIENT_ADDRESS_HEADER
from common.context import current_client_address
from common.interceptors import ServiceInterceptor
from common.redis_clients import redis_client
from common.revocation import RevocationList
from common.server import RunningServer
from common.settings import Network
from common.tls import WireTls, load_wire_tls
from common.tokens import AccessTokenVerifier
from devstack.pki import Identity, ensure_pki, issue, make_ca
from svc_user.config import UserSettings
from tests.user_service import STRONG_PASSWORD, registration

USER_SERVICE = "trading.v1.UserService"


def tls_of(identity: Identity) -> WireTls:
    loaded = load_wire_tls(identity.ca_file, identity.cert_file, identity.key_file)
    assert loaded is not None
    return loaded


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Identity:
    """A certificate naming rest_bridge, issued by a CA the platform does not trust."""
    folder = tmp_path_factory.mktemp("other-ca")
    make_ca(folder, "someone else's CA")
    return issue(folder, "rest_bridge")


@pytest.fixture(scope="module")
def secure_user_server(
    user_settings: UserSettings, user_server: RunningServer, pki: dict[str, Identity]
) -> Iterator[RunningServer]:
    """svc_user on mTLS, on the table of the session's svc_user (which made it)."""
    from svc_user.__main__ import build

    own = pki["svc_user"]
    settings = user_settings.model_copy(
        update={
            "tls_ca_file": own.ca_file,
            "tls_cert_file": own.cert_file,
            "tls_key_file": own.key_file,
        }
    )
    running = build(settings)
    yield running
    running.shutdown()


def channel_as(identity: Identity, port: int) -> grpc.Channel:
    return make_channel(
        f"127.0.0.1:{port}",
        services=[USER_SERVICE],
        policy=CallPolicy(default_deadline=5, budget=5, tls=tls_of(identity)),
    )


def code_of(call: Callable[..., object], request: object) -> grpc.StatusCode:
    try:
        call(request, timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_a_caller_without_a_certificate_is_refused(
    secure_user_server: RunningServer, pki: dict[str, Identity]
) -> None:
    address = f"127.0.0.1:{secure_user_server.port}"
    with grpc.insecure_channel(address) as plaintext:
        stub = user_pb2_grpc.UserServiceStub(plaintext)
        assert code_of(stub.GetJwks, user_pb2.GetJwksRequest()) == grpc.StatusCode.UNAVAILABLE
    # TLS that trusts the server but presents no certificate of its own.
    server_only = grpc.ssl_channel_credentials(
        root_certificates=pki["svc_user"].ca_file.read_bytes()
    )
    options = [("grpc.ssl_target_name_override", "svc-user")]
    with grpc.secure_channel(address, server_only, options=options) as anonymous:
        stub = user_pb2_grpc.UserServiceStub(anonymous)
        assert code_of(stub.GetJwks, user_pb2.GetJwksRequest()) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_of_another_ca_is_refused(
    secure_user_server: RunningServer, pki: dict[str, Identity], foreign: Identity
) -> None:
    # It trusts the platform's CA (so the server is fine) but presents a foreign cert.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["svc_user"].ca_file.read_bytes(),
        private_key=foreign.key_file.read_bytes(),
        certificate_chain=foreign.cert_file.read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", "svc-user")]
    with grpc.secure_channel(
        f"127.0.0.1:{secure_user_server.port}", credentials, options=options
    ) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        assert code_of(stub.GetJwks, user_pb2.GetJwksRequest()) == grpc.StatusCode.UNAVAILABLE


def test_a_valid_identity_is_refused_what_the_graph_does_not_allow_it(
    secure_user_server: RunningServer, pki: dict[str, Identity]
) -> None:
    port = secure_user_server.port
    with channel_as(pki["svc_inventory"], port) as inventory:
        stub = user_pb2_grpc.UserServiceStub(inventory)
        # svc_inventory may fetch the keys, nothing else.
        assert code_of(stub.GetJwks, user_pb2.GetJwksRequest()) == grpc.StatusCode.OK
        assert code_of(stub.Register, registration()) == grpc.StatusCode.PERMISSION_DENIED
    with channel_as(pki["operator"], port) as operator:
        stub = user_pb2_grpc.UserServiceStub(operator)
        assert code_of(stub.GetJwks, user_pb2.GetJwksRequest()) == grpc.StatusCode.PERMISSION_DENIED
        health = health_pb2_grpc.HealthStub(operator)
        assert code_of(health.Check, health_pb2.HealthCheckRequest()) == grpc.StatusCode.OK
    with channel_as(pki["svc_user"], port) as itself:
        # svc_user calls nobody, itself included.
        stub = user_pb2_grpc.UserServiceStub(itself)
        assert code_of(stub.GetJwks, user_pb2.GetJwksRequest()) == grpc.StatusCode.PERMISSION_DENIED


def test_the_calls_the_graph_allows_work(
    secure_user_server: RunningServer, pki: dict[str, Identity]
) -> None:
    with channel_as(pki["rest_bridge"], secure_user_server.port) as bridge:
        stub = user_pb2_grpc.UserServiceStub(bridge)
        request = registration()
        stub.Register(request, timeout=10)
        tokens = stub.Login(
            user_pb2.LoginRequest(username=request.username, password=request.password),
            timeout=10,
        )
        assert tokens.access_token


def test_a_server_holding_another_identity_is_not_believed(
    secure_user_server: RunningServer, pki: dict[str, Identity]
) -> None:
    # The bridge dials svc_order's address but finds svc_user's certificate there.
    channel = make_channel(
        f"127.0.0.1:{secure_user_server.port}",
        services=["trading.v1.OrderService"],
        policy=CallPolicy(default_deadline=5, budget=5, tls=tls_of(pki["rest_bridge"])),
    )
    with channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert code_of(health.Check, health_pb2.HealthCheckRequest()) == grpc.StatusCode.UNAVAILABLE


def test_the_bridges_aio_channel_checks_the_server_and_shows_its_certificate(
    secure_user_server: RunningServer, pki: dict[str, Identity]
) -> None:
    # The bridge's grpc.aio channels carry the same credentials and server name.
    async def health(services: list[str]) -> grpc.StatusCode:
        channel = make_aio_channel(
            f"127.0.0.1:{secure_user_server.port}",
            services=services,
            policy=CallPolicy(default_deadline=5, budget=5, tls=tls_of(pki["rest_bridge"])),
        )
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.RpcError as error:
            return error.code()
        finally:
            await channel.close()
        return grpc.StatusCode.OK

    assert asyncio.run(health([USER_SERVICE])) == grpc.StatusCode.OK
    # svc_order's address, svc_user's certificate: not believed.
    assert asyncio.run(health(["trading.v1.OrderService"])) == grpc.StatusCode.UNAVAILABLE


def test_bad_certificates_stop_the_start(pki: dict[str, Identity], foreign: Identity) -> None:
    own = pki["svc_order"]
    expired = issue(
        own.ca_file.parent,
        "svc_order",
        valid_from=datetime.now(UTC) - timedelta(days=30),
        days=10,
        file_stem="expired",
    )
    future = issue(
        own.ca_file.parent,
        "svc_order",
        valid_from=datetime.now(UTC) + timedelta(days=1),
        file_stem="future",
    )
    for identity, message in (
        (expired, "not valid now"),
        (future, "not valid now"),
        (Identity(own.ca_file, foreign.cert_file, foreign.key_file), "not issued by"),
    ):
        with pytest.raises(ValueError, match=message):
            load_wire_tls(identity.ca_file, identity.cert_file, identity.key_file)
    with pytest.raises(ValueError, match="TLS_KEY_FILE"):
        load_wire_tls(own.ca_file, own.cert_file, None)
    assert load_wire_tls(None, None, None) is None
    loaded = load_wire_tls(own.ca_file, own.cert_file, own.key_file)
    assert loaded is not None
    assert loaded.identity == "svc_order"


# --- Who may pass on the client's address ------------------------------------------------

# Outside our contracts' package: a method the interceptor serves without a token.
ADDRESS_PROBE = "tests.AddressProbe"
CLAIMED = "198.51.100.7"
LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


def _same(data: bytes) -> bytes:
    return data


def _echo_client_address(_request: bytes, _context: grpc.ServicerContext) -> bytes:
    return current_client_address().encode()


@contextmanager
def address_probe(
    tls: WireTls | None, trusted_peers: Sequence[Network], redis_url: str
) -> Iterator[int]:
    """A server with the services' interceptor whose one method answers the client
    address it decided; on mTLS with `tls` (svc_user's certificate)."""
    verifier = AccessTokenVerifier(
        issuer="unused",
        audience="unused",
        resolve_key=lambda _kid: None,  # the probe's method is not authenticated
        revocations=RevocationList(redis_client(redis_url)),
    )
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(
        executor,
        interceptors=[ServiceInterceptor(verifier, trusted_peers, mtls=tls is not None)],
    )
    echo = grpc.unary_unary_rpc_method_handler(_echo_client_address, _same, _same)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(ADDRESS_PROBE, {"Echo": echo}),)
    )
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", tls.server_credentials())
    server.start()
    try:
        yield port
    finally:
        server.stop(0).wait()
        executor.shutdown(wait=True)


def _address_seen(channel: grpc.Channel) -> str:
    """The client address the probe decided for a call that claims CLAIMED."""
    with channel:
        answer = channel.unary_unary(f"/{ADDRESS_PROBE}/Echo", _same, _same)(
            b"", metadata=((CLIENT_ADDRESS_HEADER, CLAIMED),), timeout=5
        )
    return answer.decode()


def test_on_mtls_only_the_bridges_certificate_passes_on_a_client_address(
    pki: dict[str, Identity], redis_url: str
) -> None:
    # Every caller is on loopback, which the trusted peers list: on mTLS the address
    # does not count, the certificate does.
    with address_probe(tls_of(pki["svc_user"]), LOOPBACK, redis_url) as port:
        seen = {
            name: _address_seen(channel_as(pki[name], port))
            for name in ("rest_bridge", "svc_order", "svc_inventory", "svc_user", "operator")
        }
    assert seen == {
        "rest_bridge": CLAIMED,
        "svc_order": "127.0.0.1",
        "svc_inventory": "127.0.0.1",
        "svc_user": "127.0.0.1",
        "operator": "127.0.0.1",
    }


def test_on_plaintext_the_trusted_peer_addresses_decide(redis_url: str) -> None:
    with address_probe(None, LOOPBACK, redis_url) as port:
        assert _address_seen(grpc.insecure_channel(f"127.0.0.1:{port}")) == CLAIMED
    with address_probe(None, [ipaddress.ip_network("192.0.2.0/24")], redis_url) as port:
        assert _address_seen(grpc.insecure_channel(f"127.0.0.1:{port}")) == "127.0.0.1"


def test_svc_user_on_mtls_throttles_the_address_the_bridge_passes_on(
    user_settings: UserSettings, user_server: RunningServer, pki: dict[str, Identity]
) -> None:
    from svc_user.__main__ import build

    own = pki["svc_user"]
    settings = user_settings.model_copy(
        update={
            "tls_ca_file": own.ca_file,
            "tls_cert_file": own.cert_file,
            "tls_key_file": own.key_file,
            "login_max_failures": 5,
            "login_throttle_key_prefix": f"login-{uuid.uuid4().hex[:8]}",
            # No address is trusted: the bridge's certificate is what counts.
            "client_address_trusted_peers": [],
        }
    )
    running = build(settings)
    try:
        with channel_as(pki["rest_bridge"], running.port) as bridge:
            users = user_pb2_grpc.UserServiceStub(bridge)
            account = registration()
            users.Register(account, timeout=30)

            def login(username: str, password: str, client: str) -> grpc.StatusCode:
                return code_of(
                    lambda request, timeout: users.Login(
                        request, timeout=timeout, metadata=((CLIENT_ADDRESS_HEADER, client),)
                    ),
                    user_pb2.LoginRequest(username=username, password=password),
                )

            for _ in range(5):
                unknown = f"nobody_{uuid.uuid4().hex[:8]}"
                assert login(unknown, "Wrong-Horse-99!", "198.51.100.1") == (
                    grpc.StatusCode.UNAUTHENTICATED
                )
            # That client is blocked; another behind the same bridge is not.
            assert login(account.username, STRONG_PASSWORD, "198.51.100.1") == (
                grpc.StatusCode.PERMISSION_DENIED
            )
            assert login(account.username, STRONG_PASSWORD, "198.51.100.2") == grpc.StatusCode.OK
    finally:
        running.shutdown()
