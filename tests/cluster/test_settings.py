"""Settings: flags, then HUBBUB_* variables, then the TOML file, then defaults; one documented table."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from hubbub.cluster import ServerConfig
from hubbub.cluster.settings import SETTINGS, Settings, SettingsError, documentation_table, load_settings

from .conftest import ClusterFactory, ahttp_get

ROOT = Path(__file__).resolve().parents[2]


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hubbub.toml"
    path.write_text(text)
    return str(path)


def test_defaults_match_server_config() -> None:
    settings = load_settings({}, {})
    assert settings.server == ServerConfig()
    assert settings.workers == 1
    assert settings.broker == "memory://"
    assert settings.broker_prefix == "hubbub:"
    assert settings.drain_timeout == 10.0
    assert settings.metrics_port is None
    assert settings.app is None
    assert set(settings.sources.values()) == {"default"}
    for setting in SETTINGS:
        assert settings.value(setting.name) == setting.default


def test_precedence_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        'port = 7001\nping_interval = 3\ncodec = "minbin"\nworkers = 4\norigins = ["a:*", "b:80"]\n'
        'broker = "redis://file:6379/0"\n',
    )
    environ = {"HUBBUB_PORT": "7002", "HUBBUB_PING_INTERVAL": "4.5", "HUBBUB_WORKERS": "3", "OTHER": "x"}
    settings = load_settings({"port": "7003"}, environ, config)
    assert settings.server.port == 7003  # flag beats environment and file
    assert settings.server.ping_interval == 4.5  # environment beats file
    assert settings.workers == 3
    assert settings.server.codec == "minbin"  # file beats default
    assert settings.server.origins == ("a:*", "b:80")
    assert settings.broker == "redis://file:6379/0"
    assert settings.server.handshake_timeout == ServerConfig().handshake_timeout  # default
    assert settings.sources["port"] == "cli"
    assert settings.sources["ping_interval"] == "env"
    assert settings.sources["codec"] == "file"
    assert settings.sources["handshake_timeout"] == "default"


def test_config_file_from_environment_and_flag_wins(tmp_path: Path) -> None:
    first = _toml(tmp_path, "port = 1111\n")
    second = tmp_path / "other.toml"
    second.write_text("port = 2222\n")
    assert load_settings({}, {"HUBBUB_CONFIG": first}).server.port == 1111
    assert load_settings({}, {"HUBBUB_CONFIG": first}, str(second)).server.port == 2222


def test_value_conversions() -> None:
    settings = load_settings(
        {
            "allow_client_publish": "no",
            "socket_channel_limit": "0",
            "metrics_port": "0",
            "auth_key": "",
            "origins": " x:1 , y:* ",
            "log_level": "info",
        },
        {"HUBBUB_MAX_CONNECTIONS": "12", "HUBBUB_PROTOCOL_VERSION": "1"},
    )
    assert settings.server.allow_client_publish is False
    assert settings.server.socket_channel_limit is None
    assert settings.metrics_port == 0
    assert settings.server.auth_key is None
    assert settings.server.origins == ("x:1", "y:*")
    assert settings.log_level == "INFO"
    assert settings.server.max_connections == 12
    assert settings.server.protocol_version == 1
    assert load_settings({}, {"HUBBUB_METRICS_PORT": "off"}).metrics_port is None
    assert load_settings({}, {"HUBBUB_SOCKET_CHANNEL_LIMIT": "none"}).server.socket_channel_limit is None


@pytest.mark.parametrize(
    ("cli", "environ", "message"),
    [
        ({"port": "eighty"}, {}, "--port: expected an integer"),
        ({}, {"HUBBUB_PING_TIMEOUT": "soon"}, "HUBBUB_PING_TIMEOUT: expected a number"),
        ({}, {"HUBBUB_CODEC": "xml"}, "HUBBUB_CODEC: expected one of json, minbin"),
        ({"workers": "0"}, {}, "--workers: at least 1 worker"),
        ({}, {"HUBBUB_ALLOW_CLIENT_PUBLISH": "maybe"}, "expected true or false"),
        ({"drain_timeout": "-1"}, {}, "must not be negative"),
        ({"log_level": "chatty"}, {}, "unknown logging level"),
        ({"metrics_port": "70000"}, {}, "not a port number"),
        ({"broker": "kafka://x"}, {}, "--broker: unknown broker URL scheme"),
        ({}, {"HUBBUB_BROKER": "redis://h:abc/0"}, "HUBBUB_BROKER: bad port"),
    ],
)
def test_bad_values_name_their_source(cli: dict[str, str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(cli, environ)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings({}, {}, _toml(tmp_path, "prot = 1\n"))
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({}, {}, _toml(tmp_path, "port = \n"))
    with pytest.raises(SettingsError, match="expected an integer"):
        load_settings({}, {}, _toml(tmp_path, 'port = "x"\n'))
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings({}, {}, str(tmp_path / "missing.toml"))


def test_settings_are_picklable() -> None:
    settings = load_settings({"workers": "2", "auth_key": "k"}, {})
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert isinstance(pickle.loads(pickle.dumps(settings)), Settings)


def test_documentation_table_is_current() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert documentation_table() in docs, (
        "regenerate the table with hubbub.cluster.settings.documentation_table()"
    )
    for setting in SETTINGS:
        assert setting.env in docs


def test_every_setting_has_a_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hubbub.cluster", "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for setting in SETTINGS:
        assert setting.flag in out
    assert "--config" in out


def test_cli_reports_bad_settings_and_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0"],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")},
            "HUBBUB_PING_INTERVAL": "often",
        },
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "HUBBUB_PING_INTERVAL: expected a number" in done.stderr


@pytest.mark.trio
async def test_running_server_takes_each_source(
    hubbub_cluster: ClusterFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _toml(tmp_path, 'path = "/from-file/"\nmax_connections = 5\nworkers = 3\n')
    monkeypatch.setenv("HUBBUB_CONFIG", config)
    monkeypatch.setenv("HUBBUB_WORKERS", "2")  # environment beats the file's 3
    cluster = hubbub_cluster("--metrics-port", "0", workers=2)  # the fixture's flag says 2 as well
    assert cluster.url.endswith("/from-file/")
    assert sorted(cluster.status) == [0, 1]
    for base in cluster.status.values():
        status, body = await ahttp_get(base + "/health")
        assert status == 200
        assert json.loads(body)["worker"] in (0, 1)
    with trio.fail_after(5):
        status, _ = await ahttp_get(cluster.http + "/ready")
    assert status == 200
