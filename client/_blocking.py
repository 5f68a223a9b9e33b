"""A blocking facade for scripts and notebooks: the async client runs in an event loop on a thread.

::

    with hubbub.client.connect_blocking("ws://localhost:8000/") as client:
        print(client.invoke("echo", {"a": 1}))
        with client.subscribe("room") as channel:
            for message in channel:
                print(message)

Every method blocks the calling thread until the async call finishes in the loop thread. Handlers
given to ``set_procedure``/``set_receiver`` run in the loop thread.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._auth import AuthState
from ._channel import Channel, ChannelState
from ._client import Client
from ._connect import connect
from ._events import ClientEvent
from ._handlers import Handler
from ._lifecycle import ClientState
from ._options import ClientOptions
from ._recovery import Publication, StreamPosition

__all__ = ["BlockingChannel", "BlockingClient", "connect_blocking"]


class _BlockingIterator:
    """Iterate an async iterator from another thread; ``receive(timeout)`` for one item."""

    def __init__(self, portal: BlockingPortal, iterator: AsyncIterator[Any]) -> None:
        self._portal = portal
        self._iterator = iterator

    def receive(self, timeout: float | None = None) -> Any:
        """The next item; ``TimeoutError`` after ``timeout`` seconds, ``StopIteration`` at the end."""
        try:
            return self._portal.call(_next_within, self._iterator, timeout)
        except StopAsyncIteration:
            raise StopIteration from None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self.receive()


async def _next_within(iterator: AsyncIterator[Any], timeout: float | None) -> Any:
    with anyio.fail_after(timeout):
        return await iterator.__anext__()


class BlockingChannel(_BlockingIterator):
    """The blocking twin of :class:`~hubbub.client.Channel` (iterate it; leaving ``with`` unsubscribes)."""

    def __init__(self, portal: BlockingPortal, channel: Channel) -> None:
        super().__init__(portal, channel)
        self._channel = channel

    @property
    def name(self) -> str:
        """The channel name."""
        return self._channel.name

    @property
    def state(self) -> ChannelState:
        """``PENDING``, ``SUBSCRIBED`` or ``UNSUBSCRIBED``."""
        return self._channel.state

    @property
    def position(self) -> StreamPosition | None:
        """The position of the last publication handed out (see ``Channel.position``)."""
        return self._channel.position

    @property
    def recovered(self) -> bool | None:
        """Whether the last resubscribe recovered (None before any; see ``Channel.recovered``)."""
        return self._channel.recovered

    @property
    def recovery_reason(self) -> str | None:
        """Why the last resubscribe did not recover (see ``Channel.recovery_reason``)."""
        return self._channel.recovery_reason

    def wait_subscribed(self, timeout: float | None = None) -> None:
        """Block until the server confirmed the subscription (see ``Channel.wait_subscribed``)."""
        self._portal.call(functools.partial(self._channel.wait_subscribed, timeout))

    def wait_resubscribed(self, timeout: float | None = None) -> bool:
        """Block until the next resubscribe is answered; whether it recovered."""
        return bool(self._portal.call(functools.partial(self._channel.wait_resubscribed, timeout)))

    def receive_publication(self, timeout: float | None = None) -> Publication:
        """The next message with its offset and epoch (ends as ``receive``)."""
        publication: Publication = self.publications().receive(timeout)
        return publication

    def publications(self) -> _BlockingIterator:
        """``for publication in channel.publications():`` the messages with their positions."""
        return _BlockingIterator(self._portal, self._channel.publications())

    def unsubscribe(self) -> None:
        """Stop this subscription handle."""
        self._portal.call(self._channel.unsubscribe)

    def __enter__(self) -> BlockingChannel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unsubscribe()


class BlockingClient:
    """The blocking twin of :class:`~hubbub.client.Client`; create it with :func:`connect_blocking`."""

    def __init__(
        self, url: str, options: ClientOptions | None = None, *, backend: str = "trio", **overrides: Any
    ) -> None:
        self._stack = contextlib.ExitStack()
        try:
            self._portal = self._stack.enter_context(start_blocking_portal(backend))
            self._client: Client = self._stack.enter_context(
                self._portal.wrap_async_context_manager(connect(url, options, **overrides))
            )
        except BaseException:
            self._stack.close()
            raise

    @property
    def client(self) -> Client:
        """The async client underneath (use it only from the loop thread)."""
        return self._client

    @property
    def state(self) -> ClientState:
        """``CONNECTING``, ``OPEN`` or ``CLOSED``."""
        return self._client.state

    @property
    def id(self) -> str | None:
        """The server's id for the current connection."""
        return self._client.id

    @property
    def auth_state(self) -> AuthState:
        """``AUTHENTICATED`` or ``UNAUTHENTICATED``."""
        return self._client.auth_state

    @property
    def auth_token(self) -> str | None:
        """The signed auth token, if authenticated."""
        return self._client.auth_token

    @property
    def auth_claims(self) -> Any:
        """The token's claims, decoded without verification."""
        return self._client.auth_claims

    def invoke(self, procedure: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call a server procedure (see ``Client.invoke``)."""
        return self._portal.call(functools.partial(self._client.invoke, procedure, data, timeout=timeout))

    def transmit(self, event: str, data: Any = None) -> None:
        """Send an event with no reply."""
        self._portal.call(self._client.transmit, event, data)

    def publish(
        self, channel: str, data: Any = None, *, ack: bool = True, timeout: float | None = None
    ) -> None:
        """Publish to a channel (see ``Client.publish``)."""
        self._portal.call(functools.partial(self._client.publish, channel, data, ack=ack, timeout=timeout))

    def subscribe(self, channel: str, **options: Any) -> BlockingChannel:
        """Subscribe (same options as ``Client.subscribe``) and return a blocking channel."""
        handle = self._portal.call(functools.partial(self._client.subscribe, channel, **options))
        return BlockingChannel(self._portal, handle)

    def authenticate(self, token: str) -> None:
        """Present a signed token (see ``Client.authenticate``)."""
        self._portal.call(self._client.authenticate, token)

    def deauthenticate(self) -> None:
        """Forget the token and tell the server."""
        self._portal.call(self._client.deauthenticate)

    def wait_connected(self, timeout: float | None = None) -> None:
        """Block until a connection is open."""
        self._portal.call(functools.partial(self._client.wait_connected, timeout))

    def wait_authenticated(self, timeout: float | None = None) -> None:
        """Block until authenticated."""
        self._portal.call(functools.partial(self._client.wait_authenticated, timeout))

    def set_procedure(self, name: str, handler: Handler | None) -> None:
        """Answer server invokes of ``name`` (the handler runs in the loop thread)."""
        self._portal.call(self._client.set_procedure, name, handler)

    def set_receiver(self, name: str, handler: Handler | None) -> None:
        """Handle server transmits of ``name`` (the handler runs in the loop thread)."""
        self._portal.call(self._client.set_receiver, name, handler)

    @contextlib.contextmanager
    def listen(self, event: str, max_size: int = 1000) -> Iterator[_BlockingIterator]:
        """``with client.listen("greetBack") as stream: for data in stream:``."""
        with self._portal.wrap_async_context_manager(self._client.listen(event, max_size)) as stream:
            yield _BlockingIterator(self._portal, stream)

    @contextlib.contextmanager
    def events(self, max_size: int = 256) -> Iterator[Iterator[ClientEvent]]:
        """``with client.events() as events: for event in events:`` (see ``Client.events``)."""
        with self._portal.wrap_async_context_manager(self._client.events(max_size)) as stream:
            yield _BlockingIterator(self._portal, stream)

    def close(self) -> None:
        """Close the connection and stop the loop thread. Idempotent."""
        self._stack.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect_blocking(
    url: str, options: ClientOptions | None = None, *, backend: str = "trio", **overrides: Any
) -> BlockingClient:
    """Connect and return a :class:`BlockingClient` (use it in ``with``, or call ``close()``).

    ``options``/``overrides`` are those of :func:`~hubbub.client.connect`; ``backend`` picks the
    event loop that runs in the background thread (``"trio"`` or ``"asyncio"``).
    """
    return BlockingClient(url, options, backend=backend, **overrides)
