"""The ``hubbub`` command line: ``hubbub run`` serves; client commands come from hubbub.client."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from hubbub import __version__

from .config import ServerConfig

__all__ = ["main"]


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = ServerConfig()
    run = subparsers.add_parser("run", help="run a hubbub server", description="Run a hubbub server.")
    run.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    run.add_argument(
        "--port", type=int, default=defaults.port, help="port; 0 picks a free one (default %(default)s)"
    )
    run.add_argument("--app", default=None, help="the application, as module:attribute")
    run.add_argument("--codec", choices=("json", "minbin"), default=defaults.codec)
    run.add_argument(
        "--auth-key", default=None, help="HMAC key for auth tokens (default: random per process)"
    )
    run.add_argument("--broker", default="memory://", help="broker URL (default %(default)s)")
    run.add_argument("--path", default=defaults.path, help="WebSocket path (default %(default)s)")
    run.add_argument("--ping-interval", type=float, default=defaults.ping_interval, metavar="SECONDS")
    run.add_argument("--ping-timeout", type=float, default=defaults.ping_timeout, metavar="SECONDS")
    run.add_argument("--handshake-timeout", type=float, default=defaults.handshake_timeout, metavar="SECONDS")
    run.add_argument("--ack-timeout", type=float, default=defaults.ack_timeout, metavar="SECONDS")
    run.add_argument("--protocol-version", type=int, choices=(1, 2), default=defaults.protocol_version)
    run.add_argument("--max-payload", type=int, default=defaults.max_payload, metavar="BYTES")
    run.add_argument("--outbound-limit", type=int, default=defaults.outbound_limit, metavar="BYTES")
    run.add_argument("--socket-channel-limit", type=int, default=defaults.socket_channel_limit, metavar="N")
    run.add_argument(
        "--origins", default=",".join(defaults.origins), help="allowed origins, host:port patterns"
    )
    run.add_argument("--log-level", default="WARNING", help="logging level (default %(default)s)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .runner import load_app, run_worker

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ServerConfig(
        host=args.host,
        port=args.port,
        path=args.path,
        codec=args.codec,
        protocol_version=args.protocol_version,
        auth_key=args.auth_key,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        handshake_timeout=args.handshake_timeout,
        ack_timeout=args.ack_timeout,
        max_payload=args.max_payload,
        outbound_limit=args.outbound_limit,
        socket_channel_limit=args.socket_channel_limit,
        origins=tuple(o.strip() for o in args.origins.split(",") if o.strip()),
    )
    try:
        app = load_app(args.app)
    except (ImportError, ValueError) as error:
        print(f"hubbub: cannot load the app: {error}", file=sys.stderr)
        return 2
    return run_worker(app, config, args.broker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubbub", description="Real-time pub/sub, SocketCluster-compatible."
    )
    parser.add_argument("--version", action="version", version=f"hubbub {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_run(subparsers)
    try:
        client_cli = importlib.import_module("hubbub.client.cli")
    except ImportError:
        pass
    else:
        client_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hubbub`` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
