"""The workers' control path: messages between workers through the broker, and surveys.

Control messages travel on reserved channels: their names start with a NUL character, which no
client may subscribe or publish to (see :func:`reserved`), and they are published with the broker's
plain ``publish`` (never the history step). Every worker subscribes to :data:`CONTROL`, which
reaches every worker, and to its own node channel, where answers to its surveys come.

A message is a dict with an ``op``. Handlers are registered per ``op``. A *survey* asks every
worker a question (``kind`` and ``params``): each answers on the asking worker's node channel, and
the asker waits for the workers it expects (bounded).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from hubbub.broker import Broker, BrokerUnavailable

from ._loop import Spawner

__all__ = ["CONTROL", "RESERVED_PREFIX", "ControlPath", "node_channel", "reserved"]

log = logging.getLogger("hubbub.control")

#: Channel names that start with this are the server's own.
RESERVED_PREFIX = "\x00"
CONTROL = RESERVED_PREFIX + "hubbub:control"
#: Backoff of the control subscriptions while the broker is unavailable (seconds).
_RETRY_INITIAL, _RETRY_MAX = 0.1, 2.0


def reserved(channel: str) -> bool:
    """Whether ``channel`` is one of the server's own (clients may neither subscribe nor publish)."""
    return channel.startswith(RESERVED_PREFIX)


def node_channel(uid: str) -> str:
    """The channel where answers to worker ``uid``'s surveys come."""
    return f"{RESERVED_PREFIX}hubbub:node:{uid}"


Handler = Callable[[dict[str, Any]], None]
SurveyHandler = Callable[[dict[str, Any]], Any]


@dataclass(eq=False)
class _Survey:
    expected: set[str]
    answers: dict[str, Any] = field(default_factory=dict)
    done: anyio.Event = field(default_factory=anyio.Event)


class ControlPath:
    """This worker's end of the control path (``uid``: the worker's node id)."""

    def __init__(self, broker: Broker, uid: str, nursery: Spawner) -> None:
        self._broker = broker
        self.uid = uid
        self._nursery = nursery
        self._handlers: dict[str, Handler] = {}
        self._survey_handlers: dict[str, SurveyHandler] = {}
        self._surveys: dict[str, _Survey] = {}
        #: Set once both control channels are subscribed at the broker.
        self.subscribed = anyio.Event()

    @property
    def channels(self) -> tuple[str, str]:
        return CONTROL, node_channel(self.uid)

    def on(self, op: str, handler: Handler) -> None:
        """Call ``handler(message)`` for every control message with this ``op``."""
        self._handlers[op] = handler

    def on_survey(self, kind: str, handler: SurveyHandler) -> None:
        """Answer surveys of ``kind`` with ``handler(params)`` (a value the broker can carry)."""
        self._survey_handlers[kind] = handler

    async def subscribe(self) -> None:
        """Subscribe the control channels, retrying while the broker is unavailable."""
        delay = _RETRY_INITIAL
        for channel in self.channels:
            while True:
                try:
                    await self._broker.subscribe(channel)
                    break
                except BrokerUnavailable as error:
                    log.debug("control: subscribing %r failed (%s); retrying", channel, error)
                    await anyio.sleep(delay)
                    delay = min(_RETRY_MAX, delay * 2)
        self.subscribed.set()

    async def send(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every worker (this one too); raises BrokerUnavailable."""
        await self._broker.publish(CONTROL, message)

    async def survey(
        self, kind: str, params: dict[str, Any], expected: Iterable[str], timeout: float
    ) -> dict[str, Any]:
        """Ask every worker; the answers by node id of those in ``expected`` that answered in time.

        Raises BrokerUnavailable when the question cannot be sent.
        """
        survey_id = secrets.token_hex(8)
        survey = self._surveys[survey_id] = _Survey(set(expected))
        try:
            await self.send(
                {"op": "survey", "kind": kind, "id": survey_id, "from": self.uid, "params": params}
            )
            with anyio.move_on_after(timeout):
                await survey.done.wait()
        finally:
            del self._surveys[survey_id]
        missing = survey.expected - set(survey.answers)
        if missing:
            log.warning("control: %s survey: no answer from %s within %ss", kind, sorted(missing), timeout)
        return survey.answers

    # -- receiving (called by the hub for the reserved channels, synchronously) --------------------

    def receive(self, message: Any) -> None:
        """A message on :data:`CONTROL`."""
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            log.warning("control: dropped a malformed message: %.200r", message)
            return
        op = message["op"]
        if op == "survey":
            self._answer(message)
            return
        handler = self._handlers.get(op)
        if handler is None:
            log.debug("control: no handler for %r", op)
            return
        try:
            handler(message)
        except Exception:
            log.exception("control: handling %r failed", op)

    def receive_answer(self, message: Any) -> None:
        """A message on this worker's node channel: an answer to one of its surveys."""
        if not isinstance(message, dict):
            return
        survey_id, sender = message.get("id"), message.get("from")
        survey = self._surveys.get(survey_id) if isinstance(survey_id, str) else None
        if survey is None or not isinstance(sender, str):
            return
        survey.answers[sender] = message.get("data")
        if survey.expected <= set(survey.answers):
            survey.done.set()

    def _answer(self, message: dict[str, Any]) -> None:
        kind, asker, survey_id = message.get("kind"), message.get("from"), message.get("id")
        params = message.get("params")
        handler = self._survey_handlers.get(kind) if isinstance(kind, str) else None
        if handler is None or not isinstance(asker, str) or not isinstance(survey_id, str):
            return
        try:
            data = handler(params if isinstance(params, dict) else {})
        except Exception:
            log.exception("control: answering a %r survey failed", kind)
            return
        answer = {"id": survey_id, "from": self.uid, "data": data}
        self._nursery.start_soon(self._reply, node_channel(asker), answer)

    async def _reply(self, channel: str, answer: dict[str, Any]) -> None:
        try:
            await self._broker.publish(channel, answer)
        except BrokerUnavailable as error:
            log.warning("control: could not answer a survey: %s", error)
