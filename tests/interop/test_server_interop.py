"""Every interop scenario against hubbub (``python -m hubbub.cluster run`` with ``hubbub_test_app:app``).

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
