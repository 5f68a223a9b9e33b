"""Every setting of ``hubbub run``, and where each value comes from.

A value is taken from the first of these that has it:

1. a command-line flag (``--ping-interval 5``),
2. an environment variable ``HUBBUB_<NAME>`` (``HUBBUB_PING_INTERVAL=5``),
3. the TOML file named by ``--config`` or ``HUBBUB_CONFIG`` (``ping_interval = 5``, top-level keys),
4. the default in :data:`SETTINGS`.

:data:`SETTINGS` is the one table of names, types and defaults; the CLI flags, the environment
variables, the TOML keys and the table in ``docs/configuration.md`` all come from it (a test checks
the documentation against it). :func:`load_settings` returns a picklable :class:`Settings`.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from hubbub.broker import ChannelRules, parse_redis_url

from .._config_file import CHANNELS_KEY
from .._config_file import read_config_file as read_toml
from ._config import ServerConfig

__all__ = ["ENV_PREFIX", "SETTINGS", "Setting", "Settings", "SettingsError", "add_arguments", "load_settings"]

ENV_PREFIX = "HUBBUB_"
#: Environment variable naming the TOML file when ``--config`` is not given.
CONFIG_ENV = "HUBBUB_CONFIG"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``list`` (comma-separated in flags and
    environment, a TOML array or string), ``limit`` (an int; ``0`` or ``none`` means no limit),
    ``port?`` (a port, or ``none``/``off`` for disabled), ``str?`` (a string; empty means unset),
    ``float?`` (a number of seconds, or ``none``/``off``/empty for unset).
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    #: The flag's value name in ``--help`` when the kind's is wrong (a float that is not seconds).
    metavar: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


_D = ServerConfig()

#: Every setting, in the order of the documentation table.
SETTINGS: tuple[Setting, ...] = (
    Setting("host", "str", _D.host, "address to listen on"),
    Setting("port", "int", _D.port, "port; `0` picks a free one (the listening line says which)"),
    Setting("app", "str?", None, "the application, as `module:attribute` (default: an empty App)"),
    Setting("workers", "int", 1, "worker processes; `1` runs one process with no supervisor"),
    Setting(
        "loop",
        "str",
        _D.loop,
        "event loop of the workers: `trio`, or `asyncio` (uvloop when installed: `pip install hubbub[uvloop]`); "
        "the app's procedures, receivers, middleware and hooks run on it and may await its libraries",
        ("trio", "asyncio"),
    ),
    Setting("uvloop", "bool", True, "with `loop = asyncio`: use uvloop when it is installed"),
    Setting(
        "broker",
        "str",
        "memory://",
        "broker URL, see [broker.md](broker.md); with more than one worker it must be shared (Redis)",
    ),
    Setting(
        "broker_connect_timeout",
        "float?",
        None,
        "fail fast: a worker whose broker does not answer within this many seconds of starting exits with "
        "code 2 and one line saying so; unset: it starts anyway and keeps retrying",
    ),
    Setting("broker_prefix", "str", "hubbub:", "prefix of every Redis channel; workers that talk share it"),
    Setting(
        "drain_timeout",
        "float",
        10.0,
        "on SIGTERM/SIGINT, how long workers wait for their sockets to close (after sending 4011)",
    ),
    Setting(
        "metrics_port",
        "port?",
        None,
        "first port of the per-worker status listeners (`/metrics`, `/health`, `/ready`): worker `i` "
        "gets `metrics_port + i`; `0` picks free ports; unset: none",
    ),
    Setting(
        "path",
        "str",
        _D.path,
        "the only path where WebSocket upgrades are accepted (exact match, query ignored); other paths answer HTTP 400",
    ),
    Setting(
        "codec",
        "str",
        _D.codec,
        "`json` (sc-formatter, text frames) or `minbin` (sc-codec-min-bin MessagePack, binary frames); clients must use the same",
        ("json", "minbin"),
    ),
    Setting(
        "protocol_version",
        "int",
        _D.protocol_version,
        "heartbeat strings: 2 = empty frames (socketcluster-client 16 and later, hubbub's client); "
        "1 = `#1`/`#2` (socketcluster-client 14 and 15, older Python clients such as socketcc and scclient); "
        "one worker serves one version, see [protocol.md](protocol.md)",
        (1, 2),
    ),
    Setting(
        "auth_key",
        "str?",
        _D.auth_key,
        "HMAC key (HS256) for auth tokens, used as its UTF-8 bytes; unset: random per process, so tokens "
        "survive neither a restart nor a move to another worker; **set it with more than one worker**",
    ),
    Setting(
        "auth_default_expiry",
        "float",
        _D.auth_default_expiry,
        "expiry of tokens from `set_auth_token` whose claims have no `exp`",
    ),
    Setting("ping_interval", "float", _D.ping_interval, "how often the server pings each socket"),
    Setting(
        "ping_timeout",
        "float",
        _D.ping_timeout,
        "advertised in the handshake; a socket silent for longer (no pong) is closed with 4001",
    ),
    Setting(
        "handshake_timeout",
        "float",
        _D.handshake_timeout,
        "time from TCP accept to a completed `#handshake`; past it: HTTP connections are dropped, WebSockets closed with 4005",
    ),
    Setting("ack_timeout", "float", _D.ack_timeout, "default timeout of `ServerSocket.invoke`"),
    Setting(
        "max_payload", "int", _D.max_payload, "largest message accepted from a client; larger: close 1009"
    ),
    Setting(
        "outbound_limit",
        "int",
        _D.outbound_limit,
        "bytes of the frames queued for one socket that the kernel has not taken in full (a partly sent frame "
        "counts whole); beyond it the socket is *congested*: clients of this worker that publish to its "
        "channels are not read until it drains (see [flow-control.md](flow-control.md))",
    ),
    Setting(
        "outbound_hard_limit",
        "int",
        _D.outbound_hard_limit,
        "backlog at which a socket is closed with **4010** (slow consumer) at once: the backlog is dropped, "
        "its close frame goes next on the wire",
    ),
    Setting(
        "slow_consumer_timeout",
        "float",
        _D.slow_consumer_timeout,
        "a congested socket whose kernel buffer takes none of its bytes for this long is closed with **4010**",
    ),
    Setting(
        "worker_outbound_limit",
        "int",
        _D.worker_outbound_limit,
        "backlog of all sockets of a worker (a shared frame counted per socket) past which no publishing "
        "client of the worker is read until it drops",
    ),
    Setting(
        "socket_channel_limit",
        "limit",
        _D.socket_channel_limit,
        "channels one socket may subscribe to (`0` or `none`: no limit); the next subscribe gets a "
        "`BrokerError` as socketcluster-server's `socketChannelLimit`",
    ),
    Setting("max_connections", "int", _D.max_connections, "open sockets per worker; more get HTTP 503"),
    Setting(
        "origins",
        "list",
        _D.origins,
        "allowed `Origin` as comma-separated `host:port` patterns with `*`; others get HTTP 403",
    ),
    Setting(
        "allow_client_publish",
        "bool",
        _D.allow_client_publish,
        "`false` answers client publishes with `InvalidActionError`",
    ),
    Setting(
        "close_timeout",
        "float",
        _D.close_timeout,
        "after sending a close frame, how long to wait for the client's before dropping TCP",
    ),
    Setting(
        "max_pending_calls",
        "int",
        _D.max_pending_calls,
        "procedure calls and receiver messages of one socket queued or running at once; past it an "
        "invoke gets `InvalidActionError`, a transmit closes the socket with 1008",
    ),
    Setting(
        "message_rate",
        "float",
        _D.message_rate,
        "messages per second one socket may send on average (a token bucket refilled at this rate; "
        "`0` turns it off); past it the socket is closed with 4012",
        metavar="PER_SECOND",
    ),
    Setting(
        "message_burst",
        "int",
        _D.message_burst,
        "messages one socket may send at once (the bucket's size) before `message_rate` applies",
    ),
    Setting(
        "max_channel_name",
        "int",
        _D.max_channel_name,
        "longest channel name (characters) a client may subscribe or publish to; longer: `InvalidActionError`",
    ),
    Setting(
        "max_channels",
        "int",
        _D.max_channels,
        "distinct channels with local subscribers per worker; a subscribe to one more gets `BrokerError`",
    ),
    Setting(
        "max_request_head",
        "int",
        _D.max_request_head,
        "largest HTTP request head (request line and headers) accepted; larger: HTTP 431, as Node answers",
    ),
    Setting(
        "public_metrics",
        "bool",
        _D.public_metrics,
        "also answer `/metrics` and the detailed `/health` on the main port; `false`: only the status "
        'listeners (`metrics_port`) do, and the main port\'s `/health` says only `{"status": "ok"}`',
    ),
    Setting(
        "api_key",
        "str?",
        _D.api_key,
        "key of the HTTP server API (`POST /api/<method>`, see [server-api.md](server-api.md)), sent as "
        "`X-API-Key` or `Authorization: apikey KEY`; unset: the API is off",
    ),
    Setting(
        "api_port",
        "port?",
        None,
        "serve the HTTP server API on this port (shared by every worker) instead of the main port; `0` picks "
        "a free one; unset: on the main port",
    ),
    Setting(
        "api_max_body",
        "int",
        _D.api_max_body,
        "largest request body (bytes) the HTTP server API reads; larger: HTTP 413",
    ),
    Setting(
        "api_idempotency_window",
        "float",
        _D.api_idempotency_window,
        "how long a publish's `idempotency_key` is remembered per channel (a repeat is answered, not published)",
    ),
    Setting(
        "user_claim",
        "str",
        _D.user_claim,
        "the auth token claim that names a connection's user (the server API's `disconnect` and `unsubscribe`)",
    ),
    Setting(
        "node_ttl",
        "float",
        _D.node_ttl,
        "how long a worker's node record outlives its last refresh (refreshed every third of it): the bound "
        "after which a dead worker is gone from the server API's `info` and `channels`",
    ),
    Setting(
        "tls_cert",
        "str?",
        None,
        "certificate chain (PEM file): the main port serves `wss://` (TLS) instead of `ws://`; needs `tls_key`; "
        "SIGHUP loads both files again without dropping connections",
    ),
    Setting("tls_key", "str?", None, "private key (PEM file) of `tls_cert`"),
    Setting(
        "tls_ca",
        "str?",
        None,
        "CA bundle (PEM file): clients must present a certificate that chains to it; unset: none asked",
    ),
    Setting(
        "log_level",
        "str",
        "WARNING",
        "Python logging level for the `hubbub.*` loggers; `INFO` adds one line per socket opened and closed, "
        "`DEBUG` every frame tagged with its socket id",
    ),
    Setting(
        "log_format",
        "str",
        "text",
        "`text` lines, or `json`: one object per line with `time`, `level`, `logger`, `message`, `worker` "
        "and the connection lines' fields (`socket_id`, `remote`, `user_agent`, `code`, `reason`, `duration`)",
        ("text", "json"),
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_SERVER_FIELDS = {f.name for f in fields(ServerConfig)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings of ``hubbub run``: the worker's :class:`ServerConfig` and the rest."""

    server: ServerConfig = field(default_factory=ServerConfig)
    app: str | None = None
    workers: int = 1
    uvloop: bool = True
    broker: str = "memory://"
    broker_prefix: str = "hubbub:"
    broker_connect_timeout: float | None = None
    drain_timeout: float = 10.0
    metrics_port: int | None = None
    api_port: int | None = None
    log_level: str = "WARNING"
    log_format: str = "text"
    #: Where each value came from: ``cli``, ``env``, ``file`` or ``default``.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def value(self, name: str) -> Any:
        """The value of setting ``name`` (a ServerConfig field or one of this object's)."""
        if name in _SERVER_FIELDS:
            return getattr(self.server, name)
        return getattr(self, name)


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    """Turn ``raw`` (a string from flags/environment, or a TOML value) into the setting's type."""

    def fail(why: str) -> SettingsError:
        return SettingsError(f"{source}: {why} (got {raw!r})")

    kind = setting.kind
    text = raw.strip() if isinstance(raw, str) else None
    value: Any
    if kind in ("str", "str?"):
        if not isinstance(raw, str):
            raise fail("expected a string")
        value = raw if kind == "str" else (raw or None)
    elif kind == "bool":
        if isinstance(raw, bool):
            value = raw
        elif text is not None and text.lower() in _TRUE | _FALSE:
            value = text.lower() in _TRUE
        else:
            raise fail("expected true or false")
    elif kind in ("int", "limit", "port?"):
        if kind != "int" and text is not None and text.lower() in ("none", "off", ""):
            value = None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif text is not None:
            try:
                value = int(text)
            except ValueError:
                raise fail("expected an integer") from None
        else:
            raise fail("expected an integer")
        if value is not None and value < 0:
            raise fail("must not be negative")
        if kind == "limit" and value == 0:
            value = None
        if kind == "port?" and value is not None and value > 65535:
            raise fail("not a port number")
    elif kind in ("float", "float?"):
        if kind == "float?" and (raw is None or (text is not None and text.lower() in ("none", "off", ""))):
            return None
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        elif text is not None:
            try:
                value = float(text)
            except ValueError:
                raise fail("expected a number") from None
        else:
            raise fail("expected a number")
        if value < 0:
            raise fail("must not be negative")
    elif kind == "list":
        if isinstance(raw, str):
            value = tuple(part.strip() for part in raw.split(",") if part.strip())
        elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            value = tuple(item.strip() for item in raw)
        else:
            raise fail("expected a comma-separated string or a list of strings")
    else:  # pragma: no cover - the table is fixed
        raise AssertionError(kind)
    if setting.choices and value not in setting.choices:
        raise fail("expected one of " + ", ".join(str(c) for c in setting.choices))
    return value


def _check(values: dict[str, Any], sources: dict[str, str]) -> None:
    def where(name: str) -> str:
        setting = _BY_NAME[name]
        return {"cli": setting.flag, "env": setting.env, "file": f"config file key {name}"}.get(
            sources[name], name
        )

    if values["workers"] < 1:
        raise SettingsError(f"{where('workers')}: at least 1 worker is needed")
    if values["port"] > 65535:
        raise SettingsError(f"{where('port')}: not a port number")
    level = values["log_level"].upper()
    if not isinstance(logging.getLevelName(level), int):
        raise SettingsError(f"{where('log_level')}: unknown logging level {values['log_level']!r}")
    values["log_level"] = level
    if values["api_port"] is not None and not values["api_key"]:
        raise SettingsError(f"{where('api_port')}: the server API needs api_key")
    if values["message_burst"] < 1:
        raise SettingsError(f"{where('message_burst')}: must be at least 1")
    if values["node_ttl"] < 1:
        raise SettingsError(f"{where('node_ttl')}: must be at least 1 second")
    if not values["user_claim"]:
        raise SettingsError(f"{where('user_claim')}: must not be empty")
    if not values["path"].startswith("/"):
        raise SettingsError(f"{where('path')}: must start with /")
    _check_tls(values, where)
    broker = values["broker"]
    if broker not in ("memory://", "memory"):
        try:
            parse_redis_url(broker)
        except ValueError as error:
            raise SettingsError(f"{where('broker')}: {error}") from None


def _check_tls(values: dict[str, Any], where: Callable[[str], str]) -> None:
    cert, key, ca = values["tls_cert"], values["tls_key"], values["tls_ca"]
    if (cert is None) != (key is None):
        named = "tls_cert" if cert is not None else "tls_key"
        raise SettingsError(f"{where(named)}: TLS needs both tls_cert and tls_key")
    if ca is not None and cert is None:
        raise SettingsError(f"{where('tls_ca')}: client certificates need tls_cert and tls_key")
    if cert is not None:
        from ._transport.tls import TlsFiles, load_context

        try:
            load_context(TlsFiles(cert, key, ca))
        except ValueError as error:
            raise SettingsError(f"{where('tls_cert')}: {error}") from None


def read_config_file(path: str) -> dict[str, Any]:
    """The settings in a TOML file (top-level keys named as in :data:`SETTINGS`)."""
    try:
        data = read_toml(path)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    unknown = sorted(set(data) - set(_BY_NAME) - {CHANNELS_KEY})
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return data


def load_settings(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: str | None = None,
) -> Settings:
    """Resolve every setting: ``cli`` (flag values as strings or typed, keyed by setting name),
    then ``HUBBUB_*`` in ``environ`` (default ``os.environ``), then the TOML file at
    ``config_path`` (default: ``HUBBUB_CONFIG`` from ``environ``), then the defaults.

    Raises :class:`SettingsError` naming the offending flag, variable or key.
    """
    cli = dict(cli or {})
    environ = os.environ if environ is None else environ
    unknown = sorted(set(cli) - set(_BY_NAME))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}")
    path = config_path or environ.get(CONFIG_ENV) or None
    from_file = read_config_file(path) if path else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name in cli and cli[setting.name] is not None:
            values[setting.name] = _convert(setting, cli[setting.name], setting.flag)
            sources[setting.name] = "cli"
        elif setting.env in environ:
            values[setting.name] = _convert(setting, environ[setting.env], setting.env)
            sources[setting.name] = "env"
        elif setting.name in from_file:
            values[setting.name] = _convert(setting, from_file[setting.name], f"{path}: {setting.name}")
            sources[setting.name] = "file"
        else:
            values[setting.name] = setting.default
            sources[setting.name] = "default"
    _check(values, sources)
    channel_rules = _channel_rules(from_file, path)
    server = ServerConfig(
        **{k: v for k, v in values.items() if k in _SERVER_FIELDS and k != CHANNELS_KEY},
        channels=channel_rules,
    )
    rest = {k: v for k, v in values.items() if k not in _SERVER_FIELDS}
    return Settings(server=server, sources=sources, **rest)


def _channel_rules(data: Mapping[str, Any], path: str | None) -> ChannelRules:
    try:
        return ChannelRules.from_config_data(data, path or "")
    except ValueError as error:
        raise SettingsError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting (and ``--config``); flags not given are absent from the namespace."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"TOML file with settings (default: ${CONFIG_ENV}); flags and HUBBUB_* variables win over it",
    )
    for setting in SETTINGS:
        metavar = {
            "int": "N",
            "float": "SECONDS",
            "float?": "SECONDS",
            "bool": "true|false",
            "limit": "N",
            "port?": "PORT",
        }.get(setting.kind, "VALUE")
        if setting.choices:
            metavar = "|".join(str(c) for c in setting.choices)
        metavar = setting.metavar or metavar
        help_text = plain_help(setting.help)
        said = "default" in help_text or "unset:" in help_text  # the help says the default itself
        shown = "" if said else f"default {_shown_default(setting)}; "
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            default=argparse.SUPPRESS,
            metavar=metavar,
            help=f"{help_text} ({shown}env {setting.env})".replace("%", "%%"),
        )


_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def plain_help(text: str) -> str:
    """A setting's Markdown help as plain text for ``--help``: no backticks or bold, links as docs/ paths.

    Single ``*`` are kept: they are the wildcards of patterns such as ``*:*``.
    """
    text = _LINK.sub(lambda m: f"docs/{m.group(2)}", text)
    return text.replace("**", "").replace("`", "")


def _shown_default(setting: Setting) -> str:
    default = setting.default
    if isinstance(default, tuple):
        return ",".join(default)
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def documentation_table() -> str:
    """The Markdown table of every setting, as in ``docs/configuration.md``."""
    rows = [
        "| setting (TOML key) | flag | environment | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        shown = _shown_default(setting)
        rows.append(f"| `{setting.name}` | `{setting.flag}` | `{setting.env}` | `{shown}` | {setting.help} |")
    return "\n".join(rows)
