"""What the hostile tests measure and look for: a worker's memory, its log, what a client was told.

Not a test module: the tests import it (``from .probes import ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Text that betrays the server's internals: a Python traceback, a source path, a module path, an
#: object's repr, or the name of a Python exception class.
INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|\bhubbub\.|\btrio\.|websockets|msgpack|object at 0x|"
    r"\b(?:Base)?Exception\b|\b(?:Arithmetic|Assertion|Attribute|Import|Index|Key|Lookup|Memory|Name|"
    r"OS|Overflow|Recursion|Runtime|Type|Unicode|UnicodeDecode|UnicodeEncode|Value|ZeroDivision|"
    r"Connection|ConnectionReset|ConnectionRefused|BrokenPipe|Codec|Stack)Error\b|"
    r"ExtraData|BrokerUnavailable|ProtocolViolation|ClosedResourceError|BrokenResourceError|Cancelled"
)
#: The error names a SocketCluster server sends (sc-errors), besides what an app raises itself.
SC_ERROR_NAMES = {
    "BrokerError",
    "InvalidActionError",
    "InvalidMessageError",
    "InvalidArgumentsError",
    "SilentMiddlewareBlockedError",
    "AuthTokenError",
    "AuthTokenExpiredError",
    "AuthTokenInvalidError",
    "AuthTokenNotBeforeError",
    "TimeoutError",
}


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssBound:
    """``with RssBound(pid, mib):`` fails if the process grew by more than ``mib`` MiB inside it."""

    def __init__(self, pid: int, mib: int) -> None:
        self.pid = pid
        self.mib = mib
        self.before = 0
        self.grown_mib = 0.0

    def __enter__(self) -> RssBound:
        self.before = rss_kib(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.grown_mib = (rss_kib(self.pid) - self.before) / 1024
        if exc[0] is None:
            assert self.grown_mib <= self.mib, (
                f"worker RSS grew by {self.grown_mib:.1f} MiB (bound {self.mib})"
            )


def tracebacks(server: Any) -> list[str]:
    """The worker's log lines that start or belong to a Python traceback."""
    return [line for line in server.lines if "Traceback" in line or line.startswith('  File "')]


def assert_no_traceback(server: Any) -> None:
    found = tracebacks(server)
    assert not found, "\n".join(server.lines[-60:])


def leaks(text: str) -> list[str]:
    """The internals ``text`` shows (empty: none)."""
    return [match.group(0) for match in INTERNALS.finditer(text)]


def assert_tells_nothing(error: Any) -> None:
    """An ``error`` field a client got names no internal: an SC error name, a message without internals."""
    if error is None:
        return
    assert isinstance(error, dict), error
    if "name" in error:
        assert error["name"] in SC_ERROR_NAMES, error
    assert not leaks(str(error.get("message", ""))), error
    assert set(error) <= {"name", "message", "code", "type", "statusCode", "isBadToken"}, error
