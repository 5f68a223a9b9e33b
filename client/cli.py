"""Client commands for the ``hubbub`` console script: ``subscribe``, ``publish``, ``invoke``.

``hubbub.cluster.cli`` calls :func:`register` with its subparsers, then ``args.func(args)``.

* ``hubbub subscribe URL CHANNEL`` prints each message as one JSON line until interrupted (Ctrl-C
  ends it with exit code 0); it reconnects and resubscribes by itself.
* ``hubbub publish URL CHANNEL DATA`` publishes (acknowledged) and prints nothing.
* ``hubbub invoke URL PROCEDURE DATA`` prints the result as one JSON line.

DATA is parsed as JSON when it is valid JSON, else taken as a string (with a warning on stderr
when it looks like JSON); ``--json`` makes invalid JSON an error (exit 2). Every command takes
``--codec json|minbin`` and ``--auth-token TOKEN``. Failures print one line ``hubbub: ...`` on
stderr and exit with 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from hubbub.protocol import SCError

from ._connect import connect
from ._errors import ClientError

__all__ = ["parse_data", "register"]

_MISSING = object()


def parse_data(text: str, strict: bool = False) -> Any:
    """``text`` as JSON when it parses, else the string itself (``strict``: raise ``ValueError``).

    Text that looks like JSON (it starts with ``{``, ``[`` or ``"``) but does not parse is sent as a
    string with one warning line on stderr.
    """
    try:
        return json.loads(text)
    except ValueError as error:
        if strict:
            raise ValueError(f"--json: DATA is not valid JSON: {error}") from None
        if text.lstrip()[:1] in ("{", "[", '"'):
            print(
                f"hubbub: DATA is not valid JSON ({error}); sending it as a string (--json fails instead)",
                file=sys.stderr,
            )
        return text


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": True, "data": base64.b64encode(bytes(value)).decode("ascii")}
    return repr(value)


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _error_line(error: BaseException) -> str:
    if isinstance(error, SCError):
        text = f"{error.name}: {error.message}"
        if error.fields:
            text += " " + _json_line(error.fields)
        return text
    if isinstance(error, TimeoutError) and not str(error):
        return "timed out"
    return str(error) or type(error).__name__


def _run(main: Callable[[], Awaitable[int]]) -> int:
    try:
        return anyio.run(main, backend="trio")
    except KeyboardInterrupt:
        return 0
    except (ClientError, SCError, TimeoutError, OSError, ValueError) as error:
        print(f"hubbub: {_error_line(error)}", file=sys.stderr)
        return 1


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "codec": args.codec,
        "auth_token": args.auth_token,
        "ack_timeout": args.timeout,
        "connect_timeout": args.timeout,
    }


def _subscribe(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with connect(args.url, **_options(args)) as client, client.subscribe(args.channel) as channel:
            await channel.wait_subscribed()
            print(f"hubbub: subscribed to {args.channel!r} on {client.url}", file=sys.stderr, flush=True)
            async for message in channel:
                print(_json_line(message), flush=True)
        return 0

    return _run(main)


def _publish(args: argparse.Namespace) -> int:
    try:
        data = parse_data(args.data, args.json)
    except ValueError as error:
        print(f"hubbub: {error}", file=sys.stderr)
        return 2

    async def main() -> int:
        async with connect(args.url, **_options(args)) as client:
            await client.publish(args.channel, data)
        return 0

    return _run(main)


def _invoke(args: argparse.Namespace) -> int:
    try:
        data = parse_data(args.data, args.json)
    except ValueError as error:
        print(f"hubbub: {error}", file=sys.stderr)
        return 2

    async def main() -> int:
        async with connect(args.url, **_options(args)) as client:
            result = await client.invoke(args.procedure, data)
        print(_json_line(result), flush=True)
        return 0

    return _run(main)


def _common() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--codec", choices=["json", "minbin"], default="json", help="wire codec (default: json)"
    )
    parent.add_argument("--auth-token", metavar="TOKEN", help="signed auth token to send on the handshake")
    parent.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="connect and ack timeout (default: 10)"
    )
    return parent


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``subscribe``, ``publish`` and ``invoke`` subcommands."""
    common = _common()
    url_help = "server URL, e.g. ws://localhost:8000/socketcluster/ (the path defaults to /socketcluster/)"
    data_help = "JSON if it parses as JSON, else sent as a string (with a warning if it looks like JSON)"
    json_help = "DATA must be valid JSON: fail (exit 2) instead of sending it as a string"

    sub = subparsers.add_parser(
        "subscribe", parents=[common], help="print a channel's messages as JSON lines until interrupted"
    )
    sub.add_argument("url", help=url_help)
    sub.add_argument("channel")
    sub.set_defaults(func=_subscribe)

    pub = subparsers.add_parser("publish", parents=[common], help="publish one message to a channel")
    pub.add_argument("url", help=url_help)
    pub.add_argument("channel")
    pub.add_argument("data", help=data_help)
    pub.add_argument("--json", action="store_true", help=json_help)
    pub.set_defaults(func=_publish)

    inv = subparsers.add_parser(
        "invoke", parents=[common], help="call a procedure and print its result as JSON"
    )
    inv.add_argument("url", help=url_help)
    inv.add_argument("procedure")
    inv.add_argument("data", help=data_help)
    inv.add_argument("--json", action="store_true", help=json_help)
    inv.set_defaults(func=_invoke)
