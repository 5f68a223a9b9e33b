"""The HTTP side of the server API: the key, the routes, the request body, the answer, the counts.

``POST /api/<method>`` with a JSON object body. The key comes in ``X-API-Key`` or as
``Authorization: apikey KEY`` and is compared in constant time. Answers, as Centrifugo's:

* ``200 {"result": {...}}``, or ``200 {"error": {"code": N, "message": "..."}}`` for an error of
  the call (``batch``: ``200 {"replies": [{"<method>": {...}} | {"error": {...}}, ...]}``);
* ``400`` for a body that is not JSON or has a field of the wrong type (the message names it),
  ``401`` for a missing or wrong key, ``404`` for an unknown method, ``405`` for another HTTP
  method, ``413`` for a body over ``api_max_body`` (from :mod:`.._transport.exchange`).

``GET /api/openapi.json`` (no key needed) answers the OpenAPI document of the API.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections import Counter
from typing import Any, NoReturn

import anyio

from hubbub.protocol import JsonCodec

from .._transport.exchange import Answer, PlainRequest
from .errors import BAD_REQUEST, INTERNAL, NOT_FOUND, ApiError, BadShape, result_name
from .methods import Methods
from .schema import REQUESTS, read_request

__all__ = ["PREFIX", "ApiService"]

log = logging.getLogger("hubbub.api")

PREFIX = "/api/"
DOCUMENT_PATH = "/api/openapi.json"
#: Calls of one parallel ``batch`` run at once.
BATCH_CONCURRENCY = 64
_codec = JsonCodec()


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _json(payload: Any, status: int = 200) -> Answer:
    try:
        return Answer(status, _codec.encode(payload).encode())
    except Exception:  # data the codec cannot write (nested too deeply, say)
        log.exception("api: an answer could not be encoded")
        return Answer(500, _codec.encode({"error": ApiError(INTERNAL).body()}).encode())


def _problem(status: int, message: str, code: int = BAD_REQUEST) -> Answer:
    """An HTTP error with Centrifugo's error object as the body."""
    return _json({"error": ApiError(code, message).body()}, status)


class ApiService:
    """Answers the server API's requests with ``methods``; counts every call in :attr:`calls`."""

    def __init__(self, key: str, methods: Methods, document: bytes) -> None:
        self._key = key.encode()
        self._methods = methods
        #: The OpenAPI document (JSON).
        self.document = document
        #: Calls by (method, result): ``ok`` or the kind of error (the metrics read it).
        self.calls: Counter[tuple[str, str]] = Counter()

    def refused(self, target: str, status: int) -> None:
        """Count a call the transport refused before it was read (413: too large; 411)."""
        name = target.partition("?")[0].removeprefix(PREFIX)
        self.calls[name if name in REQUESTS else "unknown", "too_large" if status == 413 else "refused"] += 1

    def _authorized(self, request: PlainRequest) -> bool:
        given = request.header("X-API-Key")
        if not given:
            scheme, _, value = (request.header("Authorization") or "").strip().partition(" ")
            if scheme.lower() != "apikey":
                return False
            given = value.strip()
        return hmac.compare_digest(given.encode(), self._key)

    async def answer(self, request: PlainRequest) -> Answer:
        """The answer to one HTTP request on the API's routes."""
        path = request.path
        if path == DOCUMENT_PATH and request.method == "GET":
            return Answer(200, self.document)
        if not path.startswith(PREFIX):
            return Answer(404, b"Not Found", "text/plain; charset=utf-8")
        name = path[len(PREFIX) :]
        label = name if name in REQUESTS else "unknown"
        if request.method != "POST":
            return Answer(405, b"Method Not Allowed: use POST", "text/plain", headers=(("Allow", "POST"),))
        if not self._authorized(request):
            self.calls[label, "unauthorized"] += 1
            return Answer(401, b"Unauthorized: missing or wrong API key", "text/plain")
        if name not in REQUESTS:
            self.calls[label, "not_found"] += 1
            return _problem(404, f"unknown method {name!r}", NOT_FOUND)
        try:
            body = json.loads(request.body, parse_constant=_reject_constant) if request.body.strip() else {}
            fields = read_request(name, body)
        except BadShape as error:
            self.calls[label, "bad_request"] += 1
            return _problem(400, str(error))
        except (ValueError, RecursionError) as error:
            self.calls[label, "bad_request"] += 1
            return _problem(400, f"the body is not JSON: {error}")
        if name == "batch":
            return _json({"replies": await self._batch(fields)})
        return _json(await self.call(name, fields))

    async def call(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``{"result": ...}`` or ``{"error": ...}`` of one method, counted."""
        method = self._methods.table.get(name)
        error: ApiError | None = None
        try:
            if method is None:
                raise ApiError(NOT_FOUND, f"unknown method {name!r}")
            result = await method(fields)
        except ApiError as raised:
            error = raised
        except Exception:
            log.exception("api: %s failed", name)
            error = ApiError(INTERNAL)
        self.calls[name if method is not None else "unknown", result_name(error)] += 1
        return {"result": result} if error is None else {"error": error.body()}

    async def _batch(self, fields: dict[str, Any]) -> list[dict[str, Any]]:
        commands: list[tuple[str, dict[str, Any]]] = fields.get("commands", [])
        replies: list[dict[str, Any]] = [{} for _ in commands]

        async def one(i: int, name: str, request: dict[str, Any]) -> None:
            reply = await self.call(name, request)
            replies[i] = {name: reply["result"]} if "result" in reply else reply

        if not fields.get("parallel"):
            for i, (name, request) in enumerate(commands):
                await one(i, name, request)
        else:
            limiter = anyio.CapacityLimiter(BATCH_CONCURRENCY)

            async def bounded(i: int, name: str, request: dict[str, Any]) -> None:
                async with limiter:
                    await one(i, name, request)

            async with anyio.create_task_group() as nursery:
                for i, (name, request) in enumerate(commands):
                    nursery.start_soon(bounded, i, name, request)
        self.calls["batch", "ok"] += 1
        return replies
