"""The methods of the server API: each takes its checked request fields and answers its result.

Results and errors are Centrifugo's (``internal/api/api.go``): a method raises :class:`ApiError`
for an error answered in the body. Channels need no configuration here (hubbub has no namespaces),
so ``102 unknown channel`` is answered only for the server's own reserved channels.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from hubbub.broker import BrokerUnavailable, HistoryPage
from hubbub.protocol import BrokerError, InvalidActionError

from .._config import ServerConfig
from .._control import reserved
from .._publisher import Publisher
from .cluster import ClusterOps
from .errors import BAD_REQUEST, INTERNAL, NOT_AVAILABLE, UNKNOWN_CHANNEL, UNRECOVERABLE_POSITION, ApiError
from .idempotency import Idempotency

__all__ = ["DEFAULT_CLOSE_CODE", "Methods"]

#: The close code of ``disconnect`` when the request gives none: 4500 and above tell the official
#: client not to reconnect (Centrifugo's default is its own "force, no reconnect").
DEFAULT_CLOSE_CODE = 4500
DEFAULT_CLOSE_REASON = "Disconnected by the server"
#: Channels of one ``broadcast`` published at once.
BROADCAST_CONCURRENCY = 64

Method = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _unavailable(what: str) -> ApiError:
    return ApiError(INTERNAL, f"{what}: the broker is unavailable")


class Methods:
    """The methods of one worker (``batch`` is the service's: it calls these)."""

    def __init__(
        self, config: ServerConfig, publisher: Publisher, ops: ClusterOps, idempotency: Idempotency
    ) -> None:
        self._config = config
        self._publisher = publisher
        self._ops = ops
        self._idempotency = idempotency
        self.table: dict[str, Method] = {
            "publish": self.publish,
            "broadcast": self.broadcast,
            "history": self.history,
            "history_remove": self.history_remove,
            "presence": self.presence,
            "presence_stats": self.presence,
            "channels": self.channels,
            "unsubscribe": self.unsubscribe,
            "disconnect": self.disconnect,
            "info": self.info,
        }

    # -- checks shared by the methods ------------------------------------------------------------

    def _channel(self, channel: Any, field: str = "channel") -> str:
        if not channel:
            raise ApiError(BAD_REQUEST, f"{field} is required")
        if reserved(channel):
            raise ApiError(UNKNOWN_CHANNEL, f"{field} {channel!r} is reserved for the server")
        if len(channel) > self._config.max_channel_name:
            raise ApiError(
                BAD_REQUEST, f"{field} is longer than the limit of {self._config.max_channel_name} characters"
            )
        return str(channel)

    @staticmethod
    def _data(request: dict[str, Any]) -> Any:
        if "b64data" in request:
            try:
                return base64.b64decode(request["b64data"], validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(BAD_REQUEST, "b64data is not valid base64") from None
        if "data" not in request:
            raise ApiError(BAD_REQUEST, "data (or b64data) is required")
        return request["data"]

    # -- publishing -----------------------------------------------------------------------------

    async def publish(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(request.get("channel"))
        return await self._publish_once(channel, self._data(request), request)

    async def broadcast(self, request: dict[str, Any]) -> dict[str, Any]:
        channels = request.get("channels")
        if not channels:
            raise ApiError(BAD_REQUEST, "channels is required (a non-empty array)")
        data = self._data(request)
        responses: list[dict[str, Any]] = [{} for _ in channels]
        limiter = anyio.CapacityLimiter(BROADCAST_CONCURRENCY)

        async def one(i: int, channel: str) -> None:
            async with limiter:
                try:
                    checked = self._channel(channel, f"channels[{i}]")
                    responses[i] = {"result": await self._publish_once(checked, data, request)}
                except ApiError as error:
                    responses[i] = {"error": error.body()}

        async with anyio.create_task_group() as nursery:
            for i, channel in enumerate(channels):
                nursery.start_soon(one, i, channel)
        return {"responses": responses}

    async def _publish_once(self, channel: str, data: Any, request: dict[str, Any]) -> dict[str, Any]:
        skip_history = bool(request.get("skip_history"))

        async def publish() -> dict[str, Any]:
            try:
                position = await self._publisher.publish(channel, data, skip_history=skip_history)
            except BrokerError:
                raise _unavailable(f"publish to {channel!r}") from None
            except InvalidActionError:
                raise ApiError(BAD_REQUEST, "data is nested too deeply") from None
            return {} if position is None else {"offset": position.offset, "epoch": position.epoch}

        key = request.get("idempotency_key")
        if not key:
            return await publish()
        try:
            return await self._idempotency.once(channel, key, publish)
        except BrokerUnavailable:
            raise _unavailable("idempotency_key") from None

    # -- history ---------------------------------------------------------------------------------

    def _history_channel(self, request: dict[str, Any]) -> str:
        channel = self._channel(request.get("channel"))
        if self._publisher.history_options(channel) is None:
            raise ApiError(
                NOT_AVAILABLE, f"channel {channel!r} keeps no history (no channel rule gives it any)"
            )
        return channel

    async def history(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = self._history_channel(request)
        limit_field = request.get("limit", 0)
        limit = None if limit_field < 0 else limit_field
        reverse = bool(request.get("reverse"))
        since = request.get("since")
        since_offset = since.get("offset", 0) if since is not None else None
        if since_offset is not None and since_offset < 0:
            raise ApiError(BAD_REQUEST, "since.offset must not be negative")
        if since_offset == 0 and reverse:
            raise ApiError(BAD_REQUEST, "since.offset must be above 0 with reverse")
        try:
            page = await self._read(channel, since_offset, limit, reverse)
        except BrokerError:
            raise _unavailable(f"history of {channel!r}") from None
        position = page.position
        if since is not None and since.get("epoch") and since["epoch"] != position.epoch:
            raise ApiError(UNRECOVERABLE_POSITION, f"the epoch of {channel!r} is {position.epoch!r} now")
        publications = [{"data": entry.data, "offset": entry.offset} for entry in page.entries]
        return {"publications": publications, "offset": position.offset, "epoch": position.epoch}

    async def _read(self, channel: str, since: int | None, limit: int | None, reverse: bool) -> HistoryPage:
        """Centrifugo's reading: with ``since`` and ``reverse``, the publications *before* ``since``."""
        publisher = self._publisher
        if since is None or not reverse:
            return await publisher.history(channel, since=since, limit=limit, reverse=reverse)
        page = await publisher.history(channel, reverse=True)
        entries = [entry for entry in page.entries if entry.offset < since]
        return HistoryPage(entries[:limit] if limit is not None else entries, page.position)

    async def history_remove(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = self._history_channel(request)
        try:
            await self._publisher.remove_history(channel)
        except BrokerError:
            raise _unavailable(f"history_remove of {channel!r}") from None
        return {}

    async def presence(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(request.get("channel"))
        raise ApiError(NOT_AVAILABLE, f"presence of {channel!r}: hubbub keeps no presence yet")

    # -- the cluster -----------------------------------------------------------------------------

    async def channels(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            counts = await self._ops.channels(request.get("pattern"))
        except BrokerUnavailable:
            raise _unavailable("channels") from None
        return {"channels": {channel: {"num_clients": count} for channel, count in sorted(counts.items())}}

    @staticmethod
    def _user(request: dict[str, Any]) -> str:
        user = request.get("user")
        if not user:
            raise ApiError(BAD_REQUEST, "user is required")
        return str(user)

    async def unsubscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        user = self._user(request)
        channel = request.get("channel")
        if channel:
            channel = self._channel(channel)
        try:
            await self._ops.unsubscribe(user, channel or None, request.get("client") or None)
        except BrokerUnavailable:
            raise _unavailable("unsubscribe") from None
        return {}

    async def disconnect(self, request: dict[str, Any]) -> dict[str, Any]:
        user = self._user(request)
        close = request.get("disconnect", {})
        code = close.get("code", DEFAULT_CLOSE_CODE)
        if code != 1000 and not 3000 <= code <= 4999:
            raise ApiError(BAD_REQUEST, f"disconnect.code must be 1000 or 3000-4999, got {code}")
        reason = close.get("reason", DEFAULT_CLOSE_REASON)
        if len(reason.encode()) > 123:  # what a close frame holds
            raise ApiError(BAD_REQUEST, "disconnect.reason is longer than 123 bytes")
        client = request.get("client") or None
        try:
            await self._ops.disconnect(user, code, reason, client, request.get("whitelist", []))
        except BrokerUnavailable:
            raise _unavailable("disconnect") from None
        return {}

    async def info(self, request: dict[str, Any]) -> dict[str, Any]:
        del request
        try:
            return {"nodes": await self._ops.info()}
        except BrokerUnavailable:
            raise _unavailable("info") from None
