"""The client commands: ``hubbub subscribe|publish|invoke`` against real servers."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from typing import Any

import pytest

from hubbub.client import connect_blocking
from hubbub.client.cli import parse_data, register

HARNESS = (
    "import argparse, sys\n"
    "from hubbub.client.cli import register\n"
    "parser = argparse.ArgumentParser(prog='hubbub')\n"
    "register(parser.add_subparsers(required=True))\n"
    "args = parser.parse_args()\n"
    "sys.exit(args.func(args))\n"
)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hubbub")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_parse_data() -> None:
    assert parse_data('{"a": 1}') == {"a": 1}
    assert parse_data("[1, 2]") == [1, 2]
    assert parse_data("42") == 42
    assert parse_data('"quoted"') == "quoted"
    assert parse_data("null") is None
    assert parse_data("hello world") == "hello world"
    assert parse_data("{not json") == "{not json"


def test_invoke_prints_json(server: Any, servers: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("invoke", server.url, "echo", '{"a": [1, "x"]}', "--codec", servers.codec) == 0
    assert json.loads(capsys.readouterr().out) == {"a": [1, "x"]}
    assert run_cli("invoke", server.url, "echo", "plain text", "--codec", servers.codec) == 0
    assert json.loads(capsys.readouterr().out) == "plain text"


def test_invoke_error_is_one_line(server: Any, servers: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("invoke", server.url, "fail", "1", "--codec", servers.codec) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("hubbub: MyCustomError: Procedure fail always fails")


def test_invoke_with_auth_token(server: Any, servers: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with connect_blocking(server.url, codec=servers.codec) as client:
        client.invoke("login", {"username": "cli"})
        client.wait_authenticated(timeout=5)
        token = client.auth_token
    assert token is not None
    assert (
        run_cli("invoke", server.url, "whoami", "null", "--auth-token", token, "--codec", servers.codec) == 0
    )
    assert json.loads(capsys.readouterr().out)["username"] == "cli"


def test_publish_refused_and_unreachable(
    server: Any, servers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("publish", server.url, "room", "hello", "--codec", servers.codec) == 0
    assert capsys.readouterr().out == ""
    assert run_cli("publish", server.url, "readonly", "hello", "--codec", servers.codec) == 1
    assert "PublishForbiddenError" in capsys.readouterr().err
    assert run_cli("publish", server.url + "?reject=1", "room", "x", "--codec", servers.codec) == 1
    assert "RejectedError" in capsys.readouterr().err
    assert run_cli("invoke", "http://not-a-ws-url", "echo", "1") == 1
    assert "ws://" in capsys.readouterr().err


def test_subscribe_prints_json_lines_until_interrupted(server: Any, servers: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "subscribe", server.url, "room", "--codec", servers.codec],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "subscribed to 'room'" in proc.stderr.readline()
        with connect_blocking(server.url, codec=servers.codec) as client:
            client.publish("room", {"n": 1})
            client.publish("room", "two words")
        assert json.loads(proc.stdout.readline()) == {"n": 1}
        assert json.loads(proc.stdout.readline()) == "two words"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_subscribe_refused_exits_non_zero(server: Any, servers: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-c", HARNESS, "subscribe", server.url, "forbidden", "--codec", servers.codec],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "hubbub: SubscribeForbiddenError: You may not subscribe to forbidden"
    ]


def test_hubbub_console_script_has_the_client_commands(server: Any, servers: Any) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hubbub.cluster",
            "invoke",
            server.url,
            "echo",
            "[1,2]",
            "--codec",
            servers.codec,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [1, 2]
