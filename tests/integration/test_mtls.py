"""mTLS between the processes and the call graph at each server: svc_user served with
its certificate refuses a caller without one, with one of another CA, and with a valid
one whose identity may not call that method; the calls the graph allows work. A
certificate that is expired, not yet valid, of another CA or half configured stops the
start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trading.v1 import user_pb2, user_pb2_grpc

from common.channels import CallPolicy, make_channel
from common.server import RunningServer
from common.tls import WireTls, load_wire_tls
from devstack.pki import Identity, ensure_pki, issue, make_ca
from svc_user.config import UserSettings
from tests.user_service import registration

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
