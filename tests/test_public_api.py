"""The chosen public surface: what each public package exports, and that its implementation is private.

To pin another package, add it to ``PUBLIC_API`` (and any submodule that is public on purpose, such
as a command line, to ``PUBLIC_SUBMODULES``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PUBLIC_API: dict[str, set[str]] = {
    "hubbub.protocol": {
        "PING", "PONG", "PUBLISH_PREFIX", "UNDEFINED",
        "AuthTokenError", "AuthTokenExpiredError", "AuthTokenInvalidError", "AuthTokenNotBeforeError",
        "BrokerError", "CallIds", "ClientPublish", "CloseCode", "Codec", "CodecError", "Connection",
        "Heartbeat", "InvalidActionError", "InvalidMessageError", "Invoke", "JsonCodec", "Liveness",
        "MinBinCodec", "Packet", "ProtocolViolation", "Raw", "ReconnectAction", "Response", "Role",
        "SCError", "SilentMiddlewareBlockedError", "State", "TokenDecodeError", "Transmit",
        "client_invoke_packet", "decode_unverified", "dehydrate_error", "extract_auth_token_data",
        "get_codec", "hydrate_error", "read_packets", "reconnect_action", "response_packet",
        "server_invoke_packet", "transmit_packet",
    },
    "hubbub.broker": {
        "Broker", "BrokerStats", "BrokerUnavailable", "ChannelOptions", "ChannelRule", "ChannelRules", "DeliverFn",
        "Envelope", "EnvelopeError", "HistoryBroker", "HistoryEntry", "HistoryOptions", "HistoryPage",
        "InProcessDelivery", "PositionedDeliverFn", "StreamPosition",
        "ManagedBroker", "MemoryBroker", "RedisBroker", "RedisTarget", "SharedValues", "open_broker", "parse_redis_url",
    },
    "hubbub.cluster": {
        "Action", "ActionType", "App", "AsgiEndpoint", "HttpRequest", "MiddlewareLine", "Request", "SCError", "Server",
        "ServerConfig", "ServerSocket", "SocketState", "bind_listener", "serve",
    },
    "hubbub.emitter": {"AsyncEmitter", "BroadcastError", "Emitter", "EncodeError"},
    "hubbub.testing": {"AppClient", "AppServer", "NothingReceived", "serve_app", "serve_app_in_thread"},
    "hubbub.client": {
        "AckTimeoutError", "AuthState", "AuthStateChanged", "BlockingChannel", "BlockingClient", "Channel",
        "ChannelOverflowError", "ChannelState", "Client", "ClientError", "ClientEvent", "ClientState",
        "ClientStatistics", "ClientOptions", "ConnectError", "ConnectFailed", "Connected", "ConnectionClosedError",
        "Disconnected", "FileTokenStore", "Handler", "HandshakeError", "KickedOut", "KickedOutError",
        "MemoryTokenStore", "NotConnectedError", "Overflow", "Publication", "Reconnecting", "ReconnectOptions",
        "RemoteError", "Resubscribed", "SCError", "StreamPosition", "TokenChanged", "TokenStore", "connect",
        "connect_blocking",
    },
}  # fmt: skip

#: Submodules that are public on purpose (not library API): ``hubbub.client.cli`` is the command line's.
#: ``hubbub.cluster``: ``cli`` and ``supervisor`` (the processes), ``settings`` (documented), ``auth``.
PUBLIC_SUBMODULES: dict[str, set[str]] = {
    "hubbub.client": {"cli"},
    "hubbub.cluster": {"auth", "cli", "settings", "supervisor"},
    "hubbub.testing": {"plugin"},
}


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_exported_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PUBLIC_API[package]
    assert len(module.__all__) == len(set(module.__all__))
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_implementation_modules_are_private(package: str) -> None:
    module = importlib.import_module(package)
    public = {info.name for info in pkgutil.iter_modules(module.__path__) if not info.name.startswith("_")}
    assert public == PUBLIC_SUBMODULES.get(package, set())


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_exported_classes_and_functions_have_docstrings(package: str) -> None:
    module = importlib.import_module(package)
    undocumented = [
        name
        for name in module.__all__
        if (inspect.isclass(value := getattr(module, name)) or inspect.isfunction(value))
        and not value.__doc__
    ]
    assert undocumented == []
