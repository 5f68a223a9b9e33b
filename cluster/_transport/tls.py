"""TLS on the main port: each accepted socket is decrypted by a relay, the worker reads plain bytes.

The transport reads and writes raw non-blocking sockets (``recv_into``, ``sendmsg``). A TLS
connection is given to it as one end of a socket pair: a relay runs the TLS session (an
``ssl.SSLObject`` on memory buffers) on the TCP socket and copies the plain bytes to and from the
other end, one task per direction. The
rest of the worker does not know about TLS. :meth:`TlsTerminator.reload` (SIGHUP) loads the
certificate files again: new connections get the new certificate, open ones go on undisturbed.
"""

from __future__ import annotations

import logging
import socket as stdsocket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from .._loop import Loop, current
from .http import plain_response

__all__ = ["TlsFiles", "TlsTerminator", "load_context", "tls_terminator"]

log = logging.getLogger("hubbub.server")

_CHUNK = 262144
#: How long a closed connection's TLS close_notify may take to send.
_GOODBYE_TIMEOUT = 1.0

Handle = Callable[[stdsocket.socket, Any], Coroutine[Any, Any, None]]


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
            try:
                await self._serve(raw, address, handle)
            except Exception:  # one connection's failure must never end the worker
                log.exception("TLS connection from %s failed", address)

        return over_tls

    async def _serve(self, raw: stdsocket.socket, address: Any, handle: Handle) -> None:
        pipe = _TlsPipe(raw, self.context, current())
        outer: stdsocket.socket | None = None
        try:
            with anyio.move_on_after(self.handshake_timeout):
                try:
                    await pipe.handshake()
                except (ssl.SSLError, OSError, EOFError) as error:
                    self.failed_handshakes += 1
                    log.info("TLS handshake with %s failed: %s", address, error)
                    if "HTTP_REQUEST" in str(error):  # ws:// to this port: say so in plain HTTP
                        _send_plain(raw, _PLAIN_TO_TLS)
                    return
            if not pipe.ready:
                return
            inner, outer = stdsocket.socketpair()
            inner.setblocking(False)
            outer.setblocking(False)
            async with anyio.create_task_group() as nursery:
                nursery.start_soon(handle, inner, address)  # it closes ``inner`` when it ends
                nursery.start_soon(_to_worker, pipe, outer)
                await _to_client(outer, pipe)
                nursery.cancel_scope.cancel()
            with anyio.move_on_after(_GOODBYE_TIMEOUT, shield=True):
                await pipe.close_notify()
        finally:
            for sock in (raw, outer):
                if sock is not None:
                    pipe.loop.notify_closing(sock)
                    sock.close()


class _TlsPipe:
    """A server-side TLS session (``SSLObject`` on memory buffers) over a raw non-blocking socket.

    Two tasks use it, one per direction; writes to the socket are serialised by a lock so that
    the records of both go out whole and in order.
    """

    __slots__ = ("_in", "_lock", "_out", "loop", "obj", "raw", "ready")

    def __init__(self, raw: stdsocket.socket, context: ssl.SSLContext, loop: Loop) -> None:
        self.raw = raw
        self.loop = loop
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self._in, self._out, server_side=True)
        self._lock = anyio.Lock()
        self.ready = False

    async def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                await self.flush()
                if not await self.fill():
                    raise EOFError("the client closed the connection during the TLS handshake") from None
                continue
            await self.flush()
            self.ready = True
            return

    async def fill(self) -> bool:
        """Read what the client sent into the session; False at the end of the connection."""
        while True:
            try:
                data = self.raw.recv(_CHUNK)
            except BlockingIOError:
                await self.loop.wait_readable(self.raw)
                continue
            except OSError:
                data = b""
            if not data:
                self._in.write_eof()
                return False
            self._in.write(data)
            return True

    async def flush(self) -> None:
        """Send the records the session produced (all of them, in order)."""
        async with self._lock:
            await _send_all(self.loop, self.raw, self._out.read())

    async def send(self, data: bytes) -> None:
        self.obj.write(data)
        await self.flush()

    async def close_notify(self) -> None:
        """Say goodbye in TLS if the client is still there to hear it."""
        try:
            self.obj.unwrap()
        except ssl.SSLError:
            pass
        try:
            await self.flush()
        except OSError:  # the client reset the connection or is gone
            pass


async def _send_all(loop: Loop, sock: stdsocket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            await loop.wait_writable(sock)


async def _to_worker(pipe: _TlsPipe, outer: stdsocket.socket) -> None:
    """Client to worker; at the client's end (or a broken TLS session) the worker reads EOF."""
    try:
        ended = False  # records that came with the handshake are read before waiting for more
        while True:
            while True:
                try:
                    data = pipe.obj.read(_CHUNK)
                except ssl.SSLWantReadError:
                    break
                if not data:
                    ended = True
                    break
                await _send_all(pipe.loop, outer, data)
            await pipe.flush()  # what reading produced (session tickets, key updates)
            if ended:
                break
            ended = not await pipe.fill()
    except (ssl.SSLError, OSError):
        pass
    try:
        outer.shutdown(stdsocket.SHUT_WR)
    except OSError:
        pass


async def _to_client(outer: stdsocket.socket, pipe: _TlsPipe) -> None:
    """Worker to client, until the worker closes its end."""
    while True:
        try:
            data = outer.recv(_CHUNK)
        except BlockingIOError:
            await pipe.loop.wait_readable(outer)
            continue
        except OSError:
            return
        if not data:
            return
        try:
            await pipe.send(data)
        except (ssl.SSLError, OSError):
            return


_PLAIN_TO_TLS = plain_response(
    400, "Bad Request", b"This port serves TLS: connect with wss:// (or https://)", "text/plain"
).serialize()


def _send_plain(raw: stdsocket.socket, data: bytes) -> None:
    try:
        raw.send(data)
    except OSError:
        pass


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
