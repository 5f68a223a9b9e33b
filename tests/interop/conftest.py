"""Shared pieces of the SocketCluster interop scenario tests.

``driver.js`` runs one named scenario with the official ``socketcluster-client@20`` (plus a raw ``ws``
peer for what that client never does) against a server URL and prints one JSON line with every check
it made (label, observed, expected). The same scenario list runs against the official
``socketcluster-server@20`` (``test_official_pair.py``, which proves the driver) and against hubbub
(``test_server_interop.py``).

Tests that ask for the ``interop_scenario`` / ``interop_codec`` fixtures are parametrized over
``SCENARIOS`` / ``CODECS``; ``run_scenario(start_server, flavour)`` starts the server with the options
the scenario needs and runs the driver against it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INTEROP = Path(__file__).resolve().parent
DRIVER = INTEROP / "driver.js"
AUTH_KEY = "hubbub-interop-test-secret"
CODECS = ("json", "minbin")
DRIVER_LIMIT_MS = 15000  # hard limit inside the driver; every scenario takes far less


@dataclass(frozen=True)
class ServerTiming:
    """Server options a scenario needs (milliseconds; hubbub's CLI takes seconds)."""

    ping_interval_ms: int = 2000
    ping_timeout_ms: int = 5000
    handshake_timeout_ms: int = 10000

    def official_args(self) -> list[str]:
        return [
            "--ping-interval",
            str(self.ping_interval_ms),
            "--ping-timeout",
            str(self.ping_timeout_ms),
            "--handshake-timeout",
            str(self.handshake_timeout_ms),
            "--auth-key",
            AUTH_KEY,
        ]

    def hubbub_args(self) -> list[str]:
        return [
            "--ping-interval",
            f"{self.ping_interval_ms / 1000:g}",
            "--ping-timeout",
            f"{self.ping_timeout_ms / 1000:g}",
            "--handshake-timeout",
            f"{self.handshake_timeout_ms / 1000:g}",
            "--auth-key",
            AUTH_KEY,
        ]


DEFAULT = ServerTiming()
FAST_PING = ServerTiming(ping_interval_ms=300, ping_timeout_ms=900)
FAST_HANDSHAKE = ServerTiming(handshake_timeout_ms=500)

# Scenario name (as known to driver.js) -> server options. Order = report order.
SCENARIOS: dict[str, ServerTiming] = {
    "handshake_no_token": DEFAULT,
    "handshake_valid_token": DEFAULT,
    "handshake_expired_token": DEFAULT,
    "handshake_wrong_key_token": DEFAULT,
    "handshake_garbage_token": DEFAULT,
    "subscribe_unsubscribe": DEFAULT,
    "publish_transmit": DEFAULT,
    "publish_invoke": DEFAULT,
    "server_publish": DEFAULT,
    "subscribe_forbidden": DEFAULT,
    "publish_readonly": DEFAULT,
    "invoke_echo": DEFAULT,
    "invoke_error": DEFAULT,
    "invoke_silent_block": DEFAULT,
    "invoke_timeout": DEFAULT,
    "transmit": DEFAULT,
    "binary": DEFAULT,
    "server_invoke": DEFAULT,
    "login_reconnect": DEFAULT,
    "login_ack": DEFAULT,
    "authenticate_good": DEFAULT,
    "authenticate_bad": DEFAULT,
    "deauth_client": DEFAULT,
    "deauth_server": DEFAULT,
    "logout_ack": DEFAULT,
    "kick_out": DEFAULT,
    "batch_client": DEFAULT,
    "batch_server": DEFAULT,
    "ping_pong": FAST_PING,
    "pong_timeout": FAST_PING,
    "handshake_timeout": FAST_HANDSHAKE,
    "no_cid_handshake": DEFAULT,
    "early_event": DEFAULT,
    "handshake_reject": DEFAULT,
    "ws_deny": DEFAULT,
    "wrong_path": DEFAULT,
    "drop_me": DEFAULT,
    "traffic_keeps_alive": FAST_PING,
    "wire_bytes": DEFAULT,
    "raw_edge": DEFAULT,
}


#: The scenarios that also run with minbin against an asyncio worker (json runs them all there).
ASYNCIO_SMOKE = (
    "handshake_valid_token",
    "publish_transmit",
    "invoke_echo",
    "binary",
    "server_invoke",
    "batch_server",
    "ping_pong",
    "wire_bytes",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "interop_codec" in names and "interop_scenario" in names and "asyncio_worker" in names:
        pairs = [(s, "json") for s in SCENARIOS] + [(s, "minbin") for s in ASYNCIO_SMOKE]
        metafunc.parametrize(("interop_scenario", "interop_codec"), pairs)
        return
    if "interop_codec" in metafunc.fixturenames:
        metafunc.parametrize("interop_codec", CODECS)
    if "interop_scenario" in metafunc.fixturenames:
        metafunc.parametrize("interop_scenario", list(SCENARIOS))


def require_node() -> None:
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")


def driver_scenario_names() -> list[str]:
    """The scenario names driver.js knows (``node driver.js --list``)."""
    require_node()
    out = subprocess.run(
        ["node", str(DRIVER), "--list"], cwd=INTEROP, capture_output=True, text=True, timeout=30, check=True
    )
    names: list[str] = json.loads(out.stdout)
    return names


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def _first_difference(actual: Any, expected: Any) -> str | None:
    """For two different strings (e.g. wire bytes): where they first differ, with some context."""
    if not (isinstance(actual, str) and isinstance(expected, str)) or actual == expected:
        return None
    i = next((k for k, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b), None)
    if i is None:
        i = min(len(actual), len(expected))
    lo = max(0, i - 20)
    return (
        f"first difference at index {i} (lengths {len(actual)} / {len(expected)}): "
        f"observed ...{actual[lo : i + 20]!r}... expected ...{expected[lo : i + 20]!r}..."
    )


def _report(
    scenario: str,
    codec: str,
    flavour: str,
    server: Any,
    proc: subprocess.CompletedProcess[str] | None,
    result: Any,
) -> str:
    lines = [f"interop scenario {scenario!r} (codec {codec}) against the {flavour} server at {server.url}"]
    if proc is None:
        lines.append(f"driver did not exit within {DRIVER_LIMIT_MS / 1000 + 15:g}s")
    else:
        lines.append(f"driver exit status {proc.returncode}")
    if isinstance(result, dict):
        if result.get("error"):
            lines.append(f"driver error: {result['error']}")
        checks = result.get("checks", [])
        failed = [c for c in checks if not c.get("ok")]
        lines.append(f"{len(checks) - len(failed)} of {len(checks)} checks passed; failed:")
        for c in failed:
            lines.append(f"  - {c['label']}")
            lines.append(f"      observed: {_show(c['actual'])}")
            lines.append(f"      expected: {_show(c['expected'])}")
            diff = _first_difference(c["actual"], c["expected"])
            if diff:
                lines.append(f"      {diff}")
        passed = [c["label"] for c in checks if c.get("ok")]
        if passed:
            lines.append("passed: " + "; ".join(passed))
        if result.get("unhandled"):
            lines.append("unhandled rejections in the driver: " + "; ".join(result["unhandled"]))
        if result.get("stack"):
            lines.append("driver stack:\n" + result["stack"])
    elif proc is not None:
        lines.append(f"driver stdout (not a JSON result): {proc.stdout[-3000:]!r}")
    if proc is not None and proc.stderr.strip():
        lines.append("driver stderr:\n" + proc.stderr[-3000:])
    server_lines = getattr(server, "lines", [])
    if server_lines:
        lines.append("server output (last 40 lines):\n" + "\n".join(server_lines[-40:]))
    return "\n".join(lines)


def run_driver(
    url: str, codec: str, scenario: str, ping_timeout_ms: int, target: str = "official"
) -> tuple[Any, Any]:
    """Run one scenario; returns (CompletedProcess or None on timeout, parsed result or None)."""
    require_node()
    cmd = [
        "node",
        str(DRIVER),
        "--url",
        url,
        "--codec",
        codec,
        "--scenario",
        scenario,
        "--auth-key",
        AUTH_KEY,
        "--ping-timeout",
        str(ping_timeout_ms),
        "--target",
        target,
        "--timeout",
        str(DRIVER_LIMIT_MS),
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=INTEROP, capture_output=True, text=True, timeout=DRIVER_LIMIT_MS / 1000 + 15
        )
    except subprocess.TimeoutExpired:
        return None, None
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            break
    return proc, result


ScenarioRunner = Callable[[Callable[..., Any], str], None]


@pytest.fixture
def run_scenario(interop_scenario: str, interop_codec: str) -> ScenarioRunner:
    """``run_scenario(start_server, "official" | "hubbub")``: start the server, run the driver, assert."""

    def run(start_server: Callable[..., Any], flavour: str) -> None:
        timing = SCENARIOS[interop_scenario]
        server_args = timing.official_args() if flavour == "official" else timing.hubbub_args()
        server = start_server(interop_codec, *server_args)
        proc, result = run_driver(
            server.url, interop_codec, interop_scenario, timing.ping_timeout_ms, target=flavour
        )
        ok = (
            proc is not None
            and proc.returncode == 0
            and isinstance(result, dict)
            and result.get("ok") is True
        )
        if not ok:
            pytest.fail(
                _report(interop_scenario, interop_codec, flavour, server, proc, result), pytrace=False
            )

    return run


@pytest.fixture
def interop_scenario_names() -> list[str]:
    """The shared scenario list (``SCENARIOS``), in order."""
    return list(SCENARIOS)


@pytest.fixture
def interop_driver_scenarios() -> list[str]:
    """The scenario names driver.js itself knows, in its order."""
    return driver_scenario_names()
