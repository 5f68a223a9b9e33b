"""Channel recovery without a server: positions read from the wire, duplicates, what a (re)subscribe asks."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from hubbub.client import Publication, StreamPosition
from hubbub.client._channel import SubscribeOptions
from hubbub.client._recovery import (
    NO_POSITION,
    NOT_REQUESTED,
    NOT_SUPPORTED,
    Recovery,
    read_position,
    read_publication,
)

E = "epoch-1"


def pub(offset: int | None, epoch: str | None = E, data: Any = None) -> Publication:
    return Publication(data, offset, epoch)


def test_a_publication_carries_its_position() -> None:
    wire = {"channel": "c", "data": {"text": "hi"}, "offset": 42, "epoch": "k3j9x0"}
    publication = read_publication(wire)
    assert publication == Publication({"text": "hi"}, 42, "k3j9x0")
    assert publication.position == StreamPosition(42, "k3j9x0")
    assert read_publication({"channel": "c", "data": 1}) == Publication(1)
    assert Publication(1).position is None


@pytest.mark.parametrize(
    "fields",
    [
        {"offset": True, "epoch": E},
        {"offset": -1, "epoch": E},
        {"offset": 1.5, "epoch": E},
        {"offset": "3", "epoch": E},
        {"offset": 3, "epoch": 7},
        {"offset": 3},
        {"epoch": E},
    ],
)
def test_a_malformed_position_is_ignored(fields: dict[str, Any]) -> None:
    assert read_position(fields) is None
    assert read_publication({"channel": "c", "data": "x", **fields}) == Publication("x")


def test_read_position_of_an_answer() -> None:
    assert read_position({"offset": 0, "epoch": ""}) == StreamPosition(0, "")
    assert read_position(None) is None
    assert read_position("nope") is None


def test_subscribe_payload_with_recover() -> None:
    here = StreamPosition(42, "k3j9x0")
    assert SubscribeOptions(recover=True).wire("chat/1", here) == {
        "channel": "chat/1",
        "data": {"recover": {"offset": 42, "epoch": "k3j9x0"}},
    }
    mine = SubscribeOptions(data={"room": 1}, wait_for_auth=True, recover=True)
    assert mine.wire("c", here) == {
        "channel": "c",
        "waitForAuth": True,
        "data": {"room": 1, "recover": {"offset": 42, "epoch": "k3j9x0"}},
    }
    assert mine.data == {"room": 1}  # the user's dict is not changed
    assert mine.wire("c") == {"channel": "c", "waitForAuth": True, "data": {"room": 1}}
    assert SubscribeOptions(recover=True).wire("c") == {"channel": "c"}


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"recover": True, "data": "text"}, TypeError, "data must be a dict or None"),
        ({"recover": True, "data": [1]}, TypeError, "got list"),
        ({"recover": True, "data": {"recover": 1}}, ValueError, "'recover' key"),
        ({"since": StreamPosition(1, E)}, ValueError, "since= needs recover=True"),
        ({"recover": True, "since": (1, E)}, TypeError, "since must be a StreamPosition"),
        ({"recover": True, "since": StreamPosition(-1, E)}, ValueError, "non-negative"),
        ({"recover": True, "since": StreamPosition(1, None)}, ValueError, "epoch must be a string"),  # type: ignore[arg-type]
    ],
)
def test_bad_recovery_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SubscribeOptions(**options)


def test_without_recover_data_stays_as_the_user_gave_it() -> None:
    assert SubscribeOptions(data="text").wire("c") == {"channel": "c", "data": "text"}
    assert SubscribeOptions(data={"recover": "mine"}).wire("c") == {
        "channel": "c",
        "data": {"recover": "mine"},
    }


def test_duplicates_are_dropped_within_an_epoch() -> None:
    recovery = Recovery(enabled=True)
    assert [recovery.accept(pub(n)) for n in (1, 2, 2, 1, 3)] == [True, True, False, False, True]
    assert recovery.position == StreamPosition(3, E)
    assert recovery.accept(pub(1, "epoch-2"))  # a new epoch starts again
    assert recovery.position == StreamPosition(1, "epoch-2")
    assert recovery.accept(Publication("plain")) and recovery.accept(Publication("plain"))


def test_a_publication_without_position_loses_the_position() -> None:
    """What min-bin does to a history channel's publications: recovering from the stale position
    would hand out again what came since, so the client stops asking (reason "no position")."""
    recovery = Recovery(enabled=True)
    recovery.confirmed({"offset": 3, "epoch": E})
    assert recovery.accept(Publication("no offset"))
    assert recovery.position is None and recovery.request() is None
    recovery.confirmed({"offset": 9, "epoch": E})
    assert (recovery.recovered, recovery.reason, recovery.position) == (
        False,
        NO_POSITION,
        StreamPosition(9, E),
    )


def test_the_first_answer_gives_the_position_and_is_no_resubscribe() -> None:
    recovery = Recovery(enabled=True)
    assert recovery.request() is None  # nothing known: nothing asked
    assert recovery.confirmed({"offset": 7, "epoch": E}) is False
    assert (recovery.position, recovery.recovered, recovery.reason) == (StreamPosition(7, E), None, None)
    assert not recovery.accept(pub(7)) and recovery.accept(pub(8))


def test_a_publication_before_the_answer_is_not_undone_by_it() -> None:
    recovery = Recovery(enabled=True)
    assert recovery.accept(pub(8))
    recovery.confirmed({"offset": 7, "epoch": E})
    assert recovery.position == StreamPosition(8, E)


def test_a_recovered_resubscribe_keeps_the_position_for_the_missed_publications() -> None:
    recovery = Recovery(enabled=True)
    recovery.confirmed({"offset": 3, "epoch": E})
    assert recovery.request() == StreamPosition(3, E)
    assert recovery.confirmed({"recovered": True, "offset": 53, "epoch": E}) is True
    assert (recovery.recovered, recovery.reason, recovery.resubscriptions) == (True, None, 1)
    assert recovery.position == StreamPosition(3, E)
    assert all(recovery.accept(pub(n)) for n in range(4, 54))
    assert recovery.position == StreamPosition(53, E)


@pytest.mark.parametrize(
    ("answer", "position"),
    [
        (
            {"recovered": False, "reason": "epoch changed", "offset": 2, "epoch": "new"},
            StreamPosition(2, "new"),
        ),
        (  # same epoch: what follows is after our position, none of it may look like a duplicate
            {"recovered": False, "reason": "too many missed", "offset": 900, "epoch": E},
            StreamPosition(3, E),
        ),
    ],
)
def test_an_unrecovered_resubscribe_takes_the_servers_position_only_in_a_new_epoch(
    answer: dict[str, Any], position: StreamPosition
) -> None:
    recovery = Recovery(enabled=True)
    recovery.confirmed({"offset": 3, "epoch": E})
    recovery.request()
    assert recovery.confirmed(answer) is True
    assert (recovery.recovered, recovery.reason, recovery.position) == (False, answer["reason"], position)


def test_resubscribes_that_did_not_ask() -> None:
    plain = Recovery(enabled=False)
    plain.confirmed({"offset": 3, "epoch": E})
    assert plain.request() is None  # recover off: the official client's payload
    plain.confirmed({"offset": 9, "epoch": E})
    assert (plain.recovered, plain.reason, plain.position) == (False, NOT_REQUESTED, StreamPosition(3, E))

    no_history = Recovery(enabled=True)
    no_history.confirmed(None)
    assert no_history.request() is None
    assert no_history.confirmed(None) is True
    assert (no_history.recovered, no_history.reason) == (False, NO_POSITION)

    old_server = Recovery(enabled=True, since=StreamPosition(3, E))
    assert old_server.request() == StreamPosition(3, E)
    assert old_server.confirmed(None) is True  # a first subscribe that asked counts
    assert (old_server.recovered, old_server.reason) == (False, NOT_SUPPORTED)


def test_since_asks_on_the_first_subscribe() -> None:
    recovery = Recovery(enabled=True, since=StreamPosition(10, E))
    assert recovery.request() == StreamPosition(10, E)
    assert recovery.confirmed({"recovered": True, "offset": 12, "epoch": E}) is True
    assert recovery.recovered is True and recovery.position == StreamPosition(10, E)


def test_the_client_does_not_import_the_server_stack() -> None:
    """StreamPosition comes from hubbub.broker: importing the client must stay free of trio and coredis."""
    code = "import sys, hubbub.client; print(sorted({m.split('.')[0] for m in sys.modules} & {'trio', 'coredis'}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
