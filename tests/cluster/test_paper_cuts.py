"""The paper cuts a new user hit (issue 15), each run as the user ran it: real commands, real servers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hubbub.client import ConnectError, connect

from ..conftest import ROOT, http_get

HUBBUB = [sys.executable, "-m", "hubbub.cluster"]


def _run(*args: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUBBUB, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def _option_help(text: str) -> dict[str, str]:
    """``--flag`` -> its help text, joined across lines."""
    options: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"  (--[a-z-]+)(?: \S+)?\s*(.*)", line)
        if match:
            current = match.group(1)
            options[current] = match.group(2)
        elif current and line.startswith(" " * 10):
            options[current] += " " + line.strip()
    return options


def test_run_help_keeps_wildcards_has_no_markdown_and_one_default() -> None:
    done = _run("run", "--help")
    assert done.returncode == 0
    options = _option_help(done.stdout)
    assert "host:port patterns with *; others get HTTP 403 (default *:*;" in options["--origins"]
    assert "docs/broker.md" in options["--broker"]
    assert "](" not in done.stdout and "`" not in done.stdout and "**" not in done.stdout
    for flag, text in options.items():
        assert text.count("default") <= 1 or flag == "--config", (flag, text)
    assert "socketcluster-client 14 and 15" in options["--protocol-version"]


def test_publish_warns_about_data_that_is_not_json_and_json_flag_fails(start_server) -> None:
    server = start_server()
    loose = subprocess.run(
        [*HUBBUB, "publish", server.url, "room", '{"text": hi}'], capture_output=True, text=True, timeout=30
    )
    assert loose.returncode == 0
    assert "DATA is not valid JSON" in loose.stderr and "sending it as a string" in loose.stderr
    strict = subprocess.run(
        [*HUBBUB, "publish", "--json", server.url, "room", '{"text": hi}'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert strict.returncode == 2
    assert strict.stderr.startswith("hubbub: --json: DATA is not valid JSON")
    fine = subprocess.run(
        [*HUBBUB, "publish", "--json", server.url, "room", '{"text": "hi"}'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (fine.returncode, fine.stderr) == (0, "")


@pytest.mark.trio
async def test_codec_mismatch_says_the_codecs_likely_differ(start_server) -> None:
    server = start_server(codec="minbin")
    with pytest.raises(ConnectError, match="likely uses another codec than this client's 'json'"):
        async with connect(server.url, auto_reconnect=False):
            pass


def test_app_attribute_that_does_not_exist_is_named(tmp_path: Path) -> None:
    (tmp_path / "chat.py").write_text("from hubbub.cluster import App\napp = App()\n")
    done = _run("run", "--port", "0", "--app", "chat:nope", cwd=tmp_path)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert line.startswith("hubbub: cannot load the app: module chat (")
    assert line.endswith("has no attribute 'nope'; its App is app")


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "-n", "run", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("[dev]" not in line for line in installs), installs


def test_get_slash_says_what_this_is_and_where_the_websocket_path_is(start_server) -> None:
    server = start_server()
    status, body = http_get(server.url.replace("ws://", "http://").replace("/socketcluster/", "/"))
    assert status == 400
    assert body == (
        "This is a WebSocket server (SocketCluster protocol), not a web page. "
        "WebSocket clients connect to ws://<this host>/socketcluster/\n"
    )


def test_broker_connect_timeout_fails_fast() -> None:
    done = _run("run", "--port", "0", "--broker", "redis://127.0.0.1:1/0", "--broker-connect-timeout", "0.5")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("hubbub: the broker redis://127.0.0.1:1/0 did not answer within 0.5 s: ")
    assert last.endswith("(broker_connect_timeout)")
    assert "keep retrying" not in done.stderr  # it gives up: no line may say it goes on


def test_protocol_doc_says_which_clients_need_version_1() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    assert "--protocol-version 1" in text
    for client in ("socketcluster-client 14", "socketcc", "scclient", "one protocol version"):
        assert client in text, client
