"""The ``hubbub`` command line: ``hubbub run`` serves; client commands come from hubbub.client."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from hubbub import __version__

from ._logging import configure_logging
from .settings import SETTINGS, SettingsError, add_arguments, load_settings

__all__ = ["main"]


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a hubbub server",
        description="Run a hubbub server: one worker process, or a supervisor and N workers (--workers N). "
        "Every setting is taken from its flag, else from its HUBBUB_* environment variable, else from "
        "the --config TOML file, else its default (docs/configuration.md).",
    )
    add_arguments(run)
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ._runner import load_app, run_worker

    given = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    try:
        settings = load_settings(given, os.environ, args.config)
    except SettingsError as error:
        print(f"hubbub: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = load_app(settings.app)
    except (ImportError, ValueError) as error:
        print(f"hubbub: cannot load the app: {error}", file=sys.stderr)
        return 2
    if settings.workers > 1:
        from .supervisor import run_cluster

        return run_cluster(settings)
    return run_worker(app, settings.server, settings.broker, settings=settings)


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
