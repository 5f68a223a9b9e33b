"""TLS on the main port: each accepted socket is decrypted by a relay, the worker reads plain bytes.

The transport reads and writes raw non-blocking sockets (``recv_into``, ``sendmsg``). A TLS
connection is given to it as one end of a socket pair: a relay task runs the TLS session
(``trio.SSLStream``) on the TCP socket and copies the plain bytes to and from the other end. The
rest of the worker does not know about TLS. :meth:`TlsTerminator.reload` (SIGHUP) loads the
certificate files again: new connections get the new certificate, open ones go on undisturbed.
"""

from __future__ import annotations

import logging
import socket as stdsocket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from .http import plain_response

__all__ = ["TlsFiles", "TlsTerminator", "load_context", "tls_terminator"]

log = logging.getLogger("hubbub.server")

_CHUNK = 65536
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

Handle = Callable[[stdsocket.socket, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The certificate chain and key (PEM) and, to ask clients for certificates, the CA bundle."""

    cert: str
    key: str
    ca: str | None = None


def load_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context for ``files``; raises ``ValueError`` saying which file could not be used."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(
            f"cannot load the certificate {files.cert} with the key {files.key}: {error}"
        ) from None
    if files.ca is not None:
        try:
            context.load_verify_locations(files.ca)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot load the client CA {files.ca}: {error}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class TlsTerminator:
    """Runs the TLS side of every connection of a worker; ``wrap`` turns a plain handler into a TLS one."""

    def __init__(self, files: TlsFiles, handshake_timeout: float) -> None:
        self.files = files
        self.context = load_context(files)
        self.handshake_timeout = handshake_timeout
        #: Connections whose TLS handshake failed (a plain HTTP client, an untrusted certificate).
        self.failed_handshakes = 0

    def reload(self) -> bool:
        """Load the files again for the connections to come; on failure keep the old ones (logged)."""
        try:
            self.context = load_context(self.files)
        except ValueError as error:
            log.error("TLS reload failed, keeping the previous certificate: %s", error)
            return False
        log.warning("TLS certificate reloaded from %s", self.files.cert)
        return True

    def wrap(self, handle: Handle) -> Handle:
        """A handler that completes the TLS handshake, then runs ``handle`` on the plain bytes."""

        async def over_tls(raw: stdsocket.socket, address: Any) -> None:
            await self._serve(raw, address, handle)

        return over_tls

    async def _serve(self, raw: stdsocket.socket, address: Any, handle: Handle) -> None:
        tls = trio.SSLStream(
            trio.SocketStream(trio.socket.from_stdlib_socket(raw)), self.context, server_side=True
        )
        try:
            with trio.move_on_after(self.handshake_timeout):
                try:
                    await tls.do_handshake()
                except _BROKEN as error:
                    self.failed_handshakes += 1
                    log.info("TLS handshake with %s failed: %s", address, _cause(error))
                    if "HTTP_REQUEST" in str(_cause(error)):  # ws:// to this port: say so in plain HTTP
                        _send_plain(raw, _PLAIN_TO_TLS)
                    return
            inner, outer = stdsocket.socketpair()
            inner.setblocking(False)
            plain = trio.SocketStream(trio.socket.from_stdlib_socket(outer))
            async with plain, trio.open_nursery() as nursery:
                nursery.start_soon(handle, inner, address)  # it closes ``inner`` when it ends
                nursery.start_soon(_to_worker, tls, plain)
                await _to_client(plain, tls)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(tls)


async def _to_worker(tls: trio.SSLStream[trio.SocketStream], plain: trio.SocketStream) -> None:
    """Client to worker; at the client's end (or a broken TLS session) the worker reads EOF."""
    try:
        while data := await tls.receive_some(_CHUNK):
            await plain.send_all(data)
    except _BROKEN:
        pass
    try:
        await plain.send_eof()
    except _BROKEN:
        pass


async def _to_client(plain: trio.SocketStream, tls: trio.SSLStream[trio.SocketStream]) -> None:
    """Worker to client, until the worker closes its end."""
    try:
        while data := await plain.receive_some(_CHUNK):
            await tls.send_all(data)
    except _BROKEN:
        return


_PLAIN_TO_TLS = plain_response(
    400, "Bad Request", b"This port serves TLS: connect with wss:// (or https://)", "text/plain"
).serialize()


def _send_plain(raw: stdsocket.socket, data: bytes) -> None:
    try:
        raw.send(data)
    except OSError:
        pass


def _cause(error: BaseException) -> BaseException:
    return error.__cause__ if error.__cause__ is not None else error


class _TlsSettings(Protocol):
    @property
    def tls_cert(self) -> str | None: ...
    @property
    def tls_key(self) -> str | None: ...
    @property
    def tls_ca(self) -> str | None: ...
    @property
    def handshake_timeout(self) -> float: ...


def tls_terminator(config: _TlsSettings) -> TlsTerminator | None:
    """The terminator for ``config``'s TLS files, or None when it has no ``tls_cert``."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    return TlsTerminator(TlsFiles(config.tls_cert, config.tls_key, config.tls_ca), config.handshake_timeout)
