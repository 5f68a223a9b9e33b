"""Every interop scenario against the official socketcluster-server@20 (proves driver.js).

The scenario list, server options and the driver runner live in ``tests/interop/conftest.py``;
``test_server_interop.py`` runs the very same scenarios against hubbub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop


def test_scenario_against_official_server(
    run_scenario: Callable[[Callable[..., Any], str], None], official_server: Callable[..., Any]
) -> None:
    run_scenario(official_server, "official")


def test_driver_knows_exactly_the_shared_scenarios(
    interop_scenario_names: list[str], interop_driver_scenarios: list[str]
) -> None:
    assert interop_driver_scenarios == interop_scenario_names
