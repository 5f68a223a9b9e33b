"""Every interop scenario against hubbub (``python -m hubbub.cluster run`` with ``hubbub_test_app:app``),
on trio and on ``--loop asyncio``.

The same scenarios as ``test_official_pair.py`` (shared via ``tests/interop/conftest.py``), driven by
the official socketcluster-client@20 and a raw ``ws`` peer: the official client must not be able to
tell hubbub from socketcluster-server@20. Server options are passed in seconds
(``--ping-interval 0.3 --ping-timeout 0.9 --handshake-timeout 0.5 --auth-key KEY``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop


def test_scenario_against_hubbub_server(
    run_scenario: Callable[[Callable[..., Any], str], None], hubbub_server: Callable[..., Any]
) -> None:
    run_scenario(hubbub_server, "hubbub")


@pytest.fixture
def asyncio_worker(hubbub_server: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``hubbub_server``, on ``--loop asyncio``."""

    def start(codec: str = "json", *args: str) -> Any:
        return hubbub_server(codec, *args, "--loop", "asyncio")

    return start


def test_scenario_against_asyncio_worker(
    run_scenario: Callable[[Callable[..., Any], str], None], asyncio_worker: Callable[..., Any]
) -> None:
    """Every scenario with json, a smoke set with minbin, against a worker on ``--loop asyncio``."""
    run_scenario(asyncio_worker, "hubbub")
