"""Per-channel options by name pattern: from the config file, from the app, first match wins."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from hubbub.broker import ChannelOptions, ChannelRule, ChannelRules, HistoryOptions, MemoryBroker
from hubbub.cluster import App, Server, ServerConfig
from hubbub.cluster.settings import SettingsError, load_settings


def test_the_first_matching_rule_wins_and_unmatched_channels_are_plain() -> None:
    rules = ChannelRules(
        [
            ChannelRule("chat/vip/*", ChannelOptions(history_size=500, history_ttl=3600)),
            ChannelRule("chat/*", ChannelOptions(history_size=10, history_ttl=60)),
        ]
    )
    assert rules.history("chat/vip/1") == HistoryOptions(500, 3600.0)
    assert rules.history("chat/1") == HistoryOptions(10, 60.0)
    assert rules.history("chat/a/b") == HistoryOptions(10, 60.0)  # * crosses /
    assert rules.history("news") is None
    assert rules.options("news") == ChannelOptions()
    assert pickle.loads(pickle.dumps(rules)) == rules


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"history_size": 10}, "needs a positive history_ttl"),
        ({"history_size": -1, "history_ttl": 5}, "must not be negative"),
        ({"history_size": "10", "history_ttl": 5}, "history_size must be an integer"),
        ({"history_size": 10, "history_ttl": 60, "history_meta_ttl": 5}, "must not be shorter"),
        ({"histroy_size": 10}, "unknown option 'histroy_size'"),
    ],
)
def test_bad_options_are_refused_with_the_key(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChannelRules.from_config([{"match": "chat/*", **options}])


def test_config_file_channels_tables(tmp_path: Path) -> None:
    path = tmp_path / "hubbub.toml"
    path.write_text('port = 9000\n[[channels]]\nmatch = "hist/*"\nhistory_size = 100\nhistory_ttl = 60\n')
    settings = load_settings(config_path=str(path), environ={})
    assert settings.server.channels.history("hist/1") == HistoryOptions(100, 60.0)
    assert settings.server.channels.history("plain") is None


def test_config_file_channels_errors_name_the_table(tmp_path: Path) -> None:
    path = tmp_path / "hubbub.toml"
    path.write_text('[[channels]]\nhistory_size = 100\nhistory_ttl = 60\n')
    with pytest.raises(SettingsError, match=r"\[\[channels\]\] #1: needs match"):
        load_settings(config_path=str(path), environ={})
    path.write_text('channels = "chat/*"\n')
    with pytest.raises(SettingsError, match="array of tables"):
        load_settings(config_path=str(path), environ={})


def test_config_rules_come_before_the_apps() -> None:
    app = App()
    app.channels("chat/*", history_size=5, history_ttl=10)
    app.channels("*", history_size=1, history_ttl=10)
    config = ServerConfig(channels=ChannelRules([ChannelRule("chat/*", ChannelOptions(history_size=50, history_ttl=10))]))
    server = Server(app, config, MemoryBroker())
    assert server.publisher.history_options("chat/1") == HistoryOptions(50, 10.0)
    assert server.publisher.history_options("other") == HistoryOptions(1, 10.0)
    with pytest.raises(ValueError, match="unknown option"):
        app.channels("x", size=3)
