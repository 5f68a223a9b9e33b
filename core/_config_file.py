"""hubbub's TOML config file (``hubbub run --config``), read the same way by every part that reads it.

The workers read every setting from it (``hubbub.cluster.settings``); a process that publishes
without a worker (:mod:`hubbub.emitter`) reads the broker prefix and the ``[[channels]]`` rules, so
that it numbers the same channels as the workers do.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

__all__ = ["CHANNELS_KEY", "PREFIX_KEY", "read_config_file"]

#: The config file's array of tables with per-channel options (``[[channels]]``).
CHANNELS_KEY = "channels"
#: The config file's key for the prefix of every Redis channel (the ``broker_prefix`` setting).
PREFIX_KEY = "broker_prefix"


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; :class:`ValueError` naming it when it cannot be read or
    is not TOML."""
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ValueError(f"cannot read config file {os.fspath(path)}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {os.fspath(path)} is not valid TOML: {error}") from None
