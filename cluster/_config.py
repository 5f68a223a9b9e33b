"""Server settings: one picklable object with a safe default for every limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from hubbub.broker import ChannelRules

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every setting of a hubbub worker. Times are in seconds, sizes in bytes.

    The defaults are socketcluster-server 20's where it has one (path, ping interval and timeout,
    handshake and ack timeouts, token expiry); the limits that protect the worker have safe
    defaults of their own.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    #: The only URL path at which WebSocket upgrades are accepted (exact match, query ignored).
    path: str = "/socketcluster/"
    #: Codec for every socket of this worker: "json" (text frames) or "minbin" (MessagePack).
    codec: str = "json"
    #: The event loop the worker runs on: ``trio`` or ``asyncio``.
    loop: str = "trio"
    #: Heartbeat strings: 2 (empty frames, the default) or 1 (``#1``/``#2``).
    protocol_version: int = 2
    #: HMAC key for auth tokens (HS256); None makes a random key per process.
    auth_key: str | None = None
    #: Expiry of tokens set with ``set_auth_token`` when the claims have no ``exp``.
    auth_default_expiry: float = 86400
    ping_interval: float = 8.0
    #: Advertised to clients in the handshake; a socket that sends no pong for this long is closed (4001).
    ping_timeout: float = 30.0
    #: A socket that has not completed ``#handshake`` this long after opening is closed (4005).
    handshake_timeout: float = 10.0
    #: Default timeout of server-to-client ``invoke`` calls.
    ack_timeout: float = 10.0
    #: Largest WebSocket message accepted from a client; larger ones close the socket with 1009.
    max_payload: int = 1 << 20
    #: Bytes queued for one socket that the kernel has not taken yet; beyond this the socket is
    #: congested: local publishers to its channels wait until it drains (flow control).
    outbound_limit: int = 4 << 20
    #: Backlog at which a socket is closed with 4010 (slow consumer) at once.
    outbound_hard_limit: int = 16 << 20
    #: A congested socket that makes no progress (the kernel takes none of its bytes) this long is
    #: closed with 4010.
    slow_consumer_timeout: float = 5.0
    #: Backlog bytes of all sockets of a worker (a frame counted once per socket holding it) past
    #: which every publishing client of the worker waits.
    worker_outbound_limit: int = 256 << 20
    #: Channels one socket may subscribe to; None for no limit.
    socket_channel_limit: int | None = 1000
    #: Maximum open sockets per worker; new connections beyond it get HTTP 503.
    max_connections: int = 100_000
    #: Allowed ``Origin`` values as ``host:port`` patterns (``*`` wildcards); ``*:*`` allows all.
    origins: tuple[str, ...] = ("*:*",)
    allow_client_publish: bool = True
    #: Seconds to wait for the peer's close frame before dropping the TCP connection.
    close_timeout: float = 3.0
    #: Procedure calls and receiver messages of one socket queued or running at once; past it an
    #: invoke gets ``InvalidActionError`` and a transmit closes the socket with 1008.
    max_pending_calls: int = 1000
    #: Messages per second one socket may send on average (a token bucket; 0 turns it off); past
    #: it, and past ``message_burst`` at once, the socket is closed with 4012.
    message_rate: float = 5000.0
    message_burst: int = 50_000
    #: Longest channel name (characters) a client may subscribe or publish to.
    max_channel_name: int = 256
    #: Distinct channels with local subscribers per worker; a subscribe to one more gets ``BrokerError``.
    max_channels: int = 250_000
    #: Largest HTTP request head (request line and headers) accepted; larger ones get HTTP 431.
    max_request_head: int = 16384
    #: Answer ``/metrics`` and the detailed ``/health`` on the main port too (else only on the
    #: status listeners, ``metrics_port``); off by default: they tell anyone pid, memory and counters.
    public_metrics: bool = False
    #: The key of the HTTP server API (``POST /api/<method>``); None: the API is off.
    api_key: str | None = None
    #: Largest request body the HTTP server API reads; larger ones get HTTP 413.
    api_max_body: int = 1 << 20
    #: Seconds a publish's ``idempotency_key`` is remembered (a repeat within it is not published again).
    api_idempotency_window: float = 300.0
    #: The claim of a connection's auth token that names its user (``disconnect``/``unsubscribe`` by user).
    user_claim: str = "sub"
    #: Seconds a worker's node record lives in the broker after its last refresh (``info``, ``channels``).
    node_ttl: float = 10.0
    #: TLS certificate chain and key (PEM files): the main port serves ``wss://``; None: plain ``ws://``.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: CA bundle (PEM) that client certificates must chain to; None: no client certificate asked.
    tls_ca: str | None = None
    #: Per-channel options by name pattern (``[[channels]]`` in the config file), before the app's own.
    channels: ChannelRules = field(default_factory=ChannelRules)

    @property
    def pretty_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.tls_cert else 'ws'}://{host}:{self.port}{self.path}"
