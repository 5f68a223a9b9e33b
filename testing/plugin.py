"""pytest fixtures for hubbub apps; enable with ``pytest_plugins = ["hubbub.testing.plugin"]``.

- ``hubbub_app``: the app under test. The default is an empty :class:`~hubbub.cluster.App`;
  override it in your ``conftest.py`` to return yours.
- ``hubbub_settings``: ``ServerConfig`` fields for the worker (default none); override it too.
- ``app_server``: the app served for the test (an :class:`~hubbub.testing.AppServer`, its worker
  in a thread with a loop of its own: trio, or asyncio with ``"loop": "asyncio"`` in
  ``hubbub_settings``), usable from any test: synchronous, trio or asyncio.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hubbub.cluster import App

from ._serve import AppServer, serve_app_in_thread

__all__ = ["app_server", "hubbub_app", "hubbub_settings"]


@pytest.fixture
def hubbub_app() -> App:
    """The app that ``app_server`` serves: override this fixture to return yours."""
    return App()


@pytest.fixture
def hubbub_settings() -> dict[str, Any]:
    """Worker settings (``ServerConfig`` fields) for ``app_server``: override to change them."""
    return {}


@pytest.fixture
def app_server(hubbub_app: App, hubbub_settings: dict[str, Any]) -> Iterator[AppServer]:
    """``hubbub_app`` served on a free port for the length of the test."""
    with serve_app_in_thread(hubbub_app, **hubbub_settings) as server:
        yield server
