"""dynalite survives a client that drops its connection in the middle of a request.

dynalite 4.0.0 rethrows the request's ECONNRESET and exits (architect/dynalite#183);
devstack/dynalite.js starts it without that. The test sends half a request, resets the
connection (SO_LINGER 0), several times, and the engine must still answer.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from common.dynamo import ensure_table, make_client
from devstack.engines import engine_environment, start_dynalite

HALF_REQUEST = (
    b"POST / HTTP/1.1\r\nHost: localhost\r\n"
    b"X-Amz-Target: DynamoDB_20120810.DescribeTable\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 1000\r\n\r\n"
    b'{"TableName": "half'
)


def _drop_mid_request(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(HALF_REQUEST)
        time.sleep(0.05)  # let the server start reading the body
        # Close with RST rather than FIN: the peer sees ECONNRESET.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_connection_reset_mid_request_leaves_dynalite_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = start_dynalite()
    for name, value in engine_environment(engine.url, "redis://unused").items():
        monkeypatch.setenv(name, value)
    try:
        port = int(engine.url.rsplit(":", 1)[1])
        client = make_client(engine.url, "us-east-1")
        ensure_table(client, "guarded")
        for _ in range(5):
            _drop_mid_request(port)
        time.sleep(0.2)  # a crash would follow the reset at once
        assert engine.process.poll() is None, "dynalite exited after a dropped connection"
        assert "guarded" in client.list_tables()["TableNames"]
    finally:
        engine.stop()
