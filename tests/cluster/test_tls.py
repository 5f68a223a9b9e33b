"""``--tls-cert``/``--tls-key``/``--tls-ca``: wss:// on the main port, with real worker processes.

Certificates are made in the test with ``trustme``. Clients: hubbub's Python client and the
official JavaScript client. SIGHUP loads new certificate files without dropping open connections;
a client that speaks the wrong scheme gets one clear ``ConnectError``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trustme

from hubbub.client import ConnectError, connect

from ..conftest import INTEROP, RunningProcess, http_get
from .conftest import poll


class Certs:
    """A CA and a certificate for 127.0.0.1 it issued, written where the server reads them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cert = directory / "server.crt"
        self.key = directory / "server.key"
        self.ca = trustme.CA()
        self.ca_file = directory / f"ca-{id(self.ca)}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.issue(self.ca)

    def issue(self, ca: trustme.CA) -> None:
        issued = ca.issue_cert("127.0.0.1", "localhost")
        issued.private_key_pem.write_to_path(str(self.key))
        for i, pem in enumerate(issued.cert_chain_pems):
            pem.write_to_path(str(self.cert), append=i > 0)

    def args(self) -> list[str]:
        return ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]

    def context(self, *cas: trustme.CA) -> ssl.SSLContext:
        context = ssl.create_default_context()
        for ca in cas or (self.ca,):
            ca.configure_trust(context)
        return context


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


async def _round_trip(url: str, context: ssl.SSLContext) -> object:
    async with (
        connect(url, ssl_context=context, auto_reconnect=False) as client,
        client.subscribe("tls-room") as channel,
    ):
        await client.publish("tls-room", {"n": 1})
        with trio.fail_after(5):
            async for message in channel:
                return message
    raise AssertionError("no message")


@pytest.mark.trio
@pytest.mark.parametrize("loop", ["trio", "asyncio"])
async def test_python_client_over_wss(start_server, certs: Certs, loop: str) -> None:
    server = start_server(*certs.args(), "--loop", loop)
    assert server.url.startswith("wss://127.0.0.1:")
    assert await _round_trip(server.url, certs.context()) == {"n": 1}
    # Plain HTTP to the TLS port is told what to use.
    status, body = http_get(server.url.replace("wss://", "http://").replace("/socketcluster/", "/health"))
    assert (status, body) == (400, "This port serves TLS: connect with wss:// (or https://)")


@pytest.mark.trio
async def test_plain_client_to_tls_port_gets_one_clear_connect_error(start_server, certs: Certs) -> None:
    server = start_server(*certs.args())
    with pytest.raises(ConnectError) as caught:
        async with connect(server.url.replace("wss://", "ws://"), auto_reconnect=False):
            pass
    assert "This port serves TLS: connect with wss://" in str(caught.value)
    assert caught.value.status == 400


@pytest.mark.trio
async def test_tls_client_to_plain_port_gets_one_clear_connect_error(start_server) -> None:
    server = start_server()
    with pytest.raises(ConnectError) as caught:
        async with connect(server.url.replace("ws://", "wss://"), auto_reconnect=False):
            pass
    message = str(caught.value)
    assert message.startswith("TLS handshake with 127.0.0.1:"), message
    assert "does the server serve plain ws://?" in message


@pytest.mark.trio
async def test_untrusted_certificate_is_named(start_server, certs: Certs) -> None:
    server = start_server(*certs.args())
    with pytest.raises(
        ConnectError, match="certificate verify failed: unable to get local issuer certificate"
    ):
        async with connect(server.url, ssl_context=ssl.create_default_context(), auto_reconnect=False):
            pass


@pytest.mark.trio
async def test_sighup_reloads_the_certificate_without_dropping_connections(
    start_server, certs: Certs
) -> None:
    server = start_server(*certs.args())
    new_ca = trustme.CA()
    both = certs.context(certs.ca, new_ca)
    async with (
        connect(server.url, ssl_context=both, auto_reconnect=False) as before,
        before.subscribe("kept") as channel,
    ):
        certs.issue(new_ca)
        server.proc.send_signal(signal.SIGHUP)
        await poll(lambda: any("TLS certificate reloaded" in line for line in server.lines), "reload line")
        # New connections get the new certificate: the old CA alone no longer verifies it.
        assert await _round_trip(server.url, certs.context(new_ca)) == {"n": 1}
        with pytest.raises(ConnectError, match="certificate verify failed"):
            await _round_trip(server.url, certs.context(certs.ca))
        # The connection made before the reload is still open and served.
        await before.publish("kept", "after reload")
        with trio.fail_after(5):
            async for message in channel:
                assert message == "after reload"
                break
    assert server.proc.poll() is None


def _handshake_then_reset(port: int, context: ssl.SSLContext) -> None:
    """A client that completes a TLS 1.2 handshake and resets the TCP connection (RST).

    With TLS 1.2 the server finishes its handshake first, so the relay is running when the
    reset arrives and answers the end of the connection with a close_notify to a dead socket.
    """
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tls.close()


@pytest.mark.trio
async def test_clients_that_reset_the_connection_do_not_stop_the_worker(start_server, certs: Certs) -> None:
    """The relay's goodbye (close_notify) to a client that is gone must not take the worker down."""
    server = start_server(*certs.args())
    port = int(server.url.split(":")[2].split("/")[0])
    for _ in range(20):
        await trio.to_thread.run_sync(_handshake_then_reset, port, certs.context())
    with pytest.raises(ConnectError, match="certificate verify failed"):
        await _round_trip(server.url, ssl.create_default_context())
    assert await _round_trip(server.url, certs.context()) == {"n": 1}
    assert server.proc.poll() is None


@pytest.mark.trio
async def test_a_failed_reload_keeps_the_old_certificate(start_server, certs: Certs) -> None:
    server = start_server(*certs.args())
    certs.key.write_text("not a key")
    server.proc.send_signal(signal.SIGHUP)
    await poll(lambda: any("TLS reload failed" in line for line in server.lines), "failed reload line")
    assert await _round_trip(server.url, certs.context()) == {"n": 1}


@pytest.mark.trio
async def test_client_certificates_with_tls_ca(start_server, certs: Certs) -> None:
    client_ca = trustme.CA()
    client_ca_file = certs.directory / "clients.pem"
    client_ca.cert_pem.write_to_path(str(client_ca_file))
    server = start_server(*certs.args(), "--tls-ca", str(client_ca_file))
    with pytest.raises(ConnectError):
        await _round_trip(server.url, certs.context())
    context = certs.context()
    client_ca.issue_cert("client@example.com").configure_cert(context)
    assert await _round_trip(server.url, context) == {"n": 1}


def test_tls_settings_errors_name_the_setting(tmp_path: Path, certs: Certs) -> None:
    base = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30, check=False)

    only_cert = run("--tls-cert", str(certs.cert))
    assert only_cert.returncode == 2
    assert only_cert.stderr.strip() == "hubbub: --tls-cert: TLS needs both tls_cert and tls_key"
    missing = run("--tls-cert", str(tmp_path / "nope.crt"), "--tls-key", str(certs.key))
    assert missing.returncode == 2
    assert "--tls-cert: cannot load the certificate" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.interop
def test_official_js_client_over_wss(start_server, certs: Certs) -> None:
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    server: RunningProcess = start_server(*certs.args())
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(certs.ca_file)}
    result = subprocess.run(
        ["node", "echo_publish.js", "--url", server.url],
        cwd=INTEROP,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"event": "done", "echo": {"hello": "tls"}, "received": {"n": 1}}


@pytest.mark.trio
async def test_supervisor_passes_sighup_to_every_worker(hubbub_cluster, certs: Certs) -> None:
    cluster = hubbub_cluster(*certs.args(), workers=2)
    assert cluster.url.startswith("wss://")
    new_ca = trustme.CA()
    certs.issue(new_ca)
    cluster.proc.send_signal(signal.SIGHUP)
    await cluster.wait_line(r"worker-0 hubbub\.server: TLS certificate reloaded")
    await cluster.wait_line(r"worker-1 hubbub\.server: TLS certificate reloaded")
    for _ in range(4):  # whichever worker takes it, the new certificate
        assert await _round_trip(cluster.url, certs.context(new_ca)) == {"n": 1}
    assert cluster.proc.poll() is None
