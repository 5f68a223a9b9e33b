"""The client's options: one frozen, validated object that :func:`connect` builds from its keywords."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, overload

from ._auth import TokenStore
from ._backoff import ReconnectOptions
from ._buffer import Overflow
from ._handlers import Handler

__all__ = ["ClientOptions", "OptionView"]

_CODECS = ("json", "minbin")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """How a client connects and behaves; times are in seconds.

    :func:`~hubbub.client.connect` takes one (``connect(url, options)``), its fields as keywords
    (``connect(url, codec="minbin")``), or both (the keywords override the object's fields).
    Invalid values raise ``ValueError`` when the object is built. See ``docs/client.md``.
    """

    #: ``"json"`` (sc-formatter) or ``"minbin"`` (sc-codec-min-bin); it must match the server's.
    codec: str = "json"
    #: The ``#handshake`` reply and every ``invoke``/acknowledged ``publish`` wait this long.
    ack_timeout: float = 10.0
    #: TCP + TLS + the HTTP upgrade.
    connect_timeout: float = 20.0
    #: A signed token to save in ``token_store`` before the first handshake.
    auth_token: str | None = None
    #: Where the token is kept (a new :class:`~hubbub.client.MemoryTokenStore` when None).
    token_store: TokenStore | None = None
    #: Reconnect after a disconnect, as socketcluster-client does.
    auto_reconnect: bool = True
    #: The backoff policy (the official client's defaults when None).
    reconnect: ReconnectOptions | None = None
    #: Entering ``connect()`` waits for the first handshake (and raises if it fails).
    wait_connected: bool = True
    #: 2 (pings are empty frames) or 1 (pings are ``#1``).
    protocol_version: int = 2
    #: The default size of each channel handle's buffer.
    channel_buffer: int = 1000
    #: The default policy of a full channel buffer.
    overflow: Overflow = Overflow.DROP_OLDEST
    #: How long a closing handshake may take.
    close_timeout: float = 2.0
    #: The largest message accepted from the server, in bytes (None: no limit).
    max_message_size: int | None = 2**24
    #: For ``wss://`` URLs (the system's defaults when None).
    ssl_context: ssl.SSLContext | None = None
    #: Handlers for server invokes, installed before the first handshake.
    procedures: Mapping[str, Handler] | None = field(default=None, compare=False)
    #: Handlers for server transmits, installed before the first handshake.
    receivers: Mapping[str, Handler] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.codec not in _CODECS:
            raise ValueError(f"codec must be one of {', '.join(map(repr, _CODECS))}, not {self.codec!r}")
        _require_positive("ack_timeout", self.ack_timeout)
        _require_positive("connect_timeout", self.connect_timeout)
        if self.close_timeout < 0:
            raise ValueError(f"close_timeout must not be negative, not {self.close_timeout!r}")
        if self.protocol_version not in (1, 2):
            raise ValueError(f"protocol_version must be 1 or 2, not {self.protocol_version!r}")
        if self.channel_buffer < 1:
            raise ValueError(f"channel_buffer must be at least 1, not {self.channel_buffer!r}")
        if self.max_message_size is not None:
            _require_positive("max_message_size", self.max_message_size)
        if self.reconnect is not None and not isinstance(self.reconnect, ReconnectOptions):
            raise ValueError(
                f"reconnect must be a ReconnectOptions (auto_reconnect=False turns reconnecting off), "
                f"not {self.reconnect!r}"
            )

    @property
    def reconnect_policy(self) -> ReconnectOptions:
        """``reconnect``, or the official client's defaults."""
        return self.reconnect if self.reconnect is not None else ReconnectOptions()


def _require_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {value!r}")


class _HasOptions(Protocol):
    @property
    def options(self) -> ClientOptions: ...


class OptionView(Generic[T]):
    """A read-only attribute that reads a field (by default the same-named one) of its owner's ``options``."""

    def __init__(self, field_name: str | None = None) -> None:
        self._field = field_name

    def __set_name__(self, owner: type, name: str) -> None:
        self._field = self._field or name

    @overload
    def __get__(self, obj: None, owner: type) -> OptionView[T]: ...

    @overload
    def __get__(self, obj: _HasOptions, owner: type) -> T: ...

    def __get__(self, obj: _HasOptions | None, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(obj.options, self._field or "")

    def __set__(self, obj: _HasOptions, value: T) -> None:
        raise AttributeError(f"{self._field} is read-only: the options are fixed when the client is made")
