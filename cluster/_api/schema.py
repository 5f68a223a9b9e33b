"""The request fields of every method of the server API, checked against a request body.

One table, :data:`REQUESTS`, names each method's fields and their types, as Centrifugo's
``api.proto`` does (the names are Centrifugo's); it is read both to check requests and to write
the OpenAPI document. Checking is shape only, as Centrifugo's JSON decoding: a field of the wrong
type is a :class:`BadShape` (HTTP 400) naming it; an unknown field is ignored; ``null`` is the same
as absent. Whether a required field has a usable value is the method's business (an error 107 in
the answer, as Centrifugo answers a missing ``channel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import BadShape

__all__ = ["METHODS", "REQUESTS", "Field", "read_fields", "read_request"]


@dataclass(frozen=True, slots=True)
class Field:
    """One request field: its JSON type (``string``, ``boolean``, ``integer``, ``any``, ``strings``,
    ``string_map``, ``object`` with ``fields``, or ``commands``), whether the method needs it, and a
    line for the documentation."""

    name: str
    kind: str
    doc: str
    required: bool = False
    fields: tuple[Field, ...] = ()


_CHANNEL = Field("channel", "string", "the channel", required=True)
_PUBLISH_OPTIONS = (
    Field("data", "any", "the publication: any JSON value (or give `b64data`)"),
    Field("b64data", "string", "binary data as base64 (standard alphabet), instead of `data`"),
    Field("skip_history", "boolean", "do not store this publication in the channel's history"),
    Field(
        "idempotency_key",
        "string",
        "a repeat of a publish with this key on the same channel within the idempotency window is "
        "answered with the first one's result and not published again",
    ),
    Field("tags", "string_map", "accepted and ignored: SocketCluster publications carry no tags"),
    Field("delta", "boolean", "accepted and ignored: no delta compression"),
    Field("version", "integer", "accepted and ignored"),
    Field("version_epoch", "string", "accepted and ignored"),
)
_POSITION = (
    Field("offset", "integer", "a publication's offset"),
    Field("epoch", "string", "the epoch the offset belongs to"),
)
_DISCONNECT = (
    Field("code", "integer", "the WebSocket close code: 1000 or 3000-4999 (default 4000)"),
    Field("reason", "string", "the close reason"),
)

#: Each method's request fields (``batch``'s commands name the other methods).
REQUESTS: dict[str, tuple[Field, ...]] = {
    "publish": (_CHANNEL, *_PUBLISH_OPTIONS),
    "broadcast": (Field("channels", "strings", "the channels", required=True), *_PUBLISH_OPTIONS),
    "history": (
        _CHANNEL,
        Field(
            "limit",
            "integer",
            "publications to return: absent or 0 only gives the channel's position, -1 all of them",
        ),
        Field(
            "since",
            "object",
            "only publications after this position (before it with `reverse`)",
            fields=_POSITION,
        ),
        Field("reverse", "boolean", "newest first"),
    ),
    "history_remove": (_CHANNEL,),
    "presence": (_CHANNEL,),
    "presence_stats": (_CHANNEL,),
    "channels": (Field("pattern", "string", "only channels matching this glob (`*`, `?`, `[...]`)"),),
    "unsubscribe": (
        Field("user", "string", "the user (the `user_claim` of the connections' auth tokens)", required=True),
        Field("channel", "string", "the channel; absent or empty: every channel"),
        Field("client", "string", "only this connection (its socket id)"),
        Field("session", "string", "accepted and ignored: a connection is its own session"),
    ),
    "disconnect": (
        Field("user", "string", "the user (the `user_claim` of the connections' auth tokens)", required=True),
        Field("client", "string", "only this connection (its socket id)"),
        Field("whitelist", "strings", "socket ids of the user's connections to keep"),
        Field("disconnect", "object", "the close code and reason", fields=_DISCONNECT),
        Field("session", "string", "accepted and ignored: a connection is its own session"),
    ),
    "info": (),
    "batch": (
        Field(
            "commands",
            "commands",
            'the calls, each an object with one method name as its key: `{"publish": {...}}`',
            required=True,
        ),
        Field("parallel", "boolean", "run the calls at once instead of one after another"),
    ),
}

#: The methods, in the documentation's order.
METHODS = tuple(REQUESTS)

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "strings": (list,),
    "string_map": (dict,),
    "object": (dict,),
    "commands": (list,),
}
_NAMES = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "strings": "an array of strings",
    "string_map": "an object of strings",
    "object": "an object",
    "commands": "an array of commands",
}


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def read_fields(fields: tuple[Field, ...], body: Any, where: str) -> dict[str, Any]:
    """The known fields of ``body`` (an object), checked; raises :class:`BadShape` naming the field."""
    if not isinstance(body, dict):
        raise BadShape(where, f"expected an object, got {_kind_of(body)}")
    values: dict[str, Any] = {}
    for field in fields:
        value = body.get(field.name)
        if value is None:
            continue
        path = f"{where}.{field.name}" if where else field.name
        values[field.name] = _read(field, value, path)
    return values


def _read(field: Field, value: Any, path: str) -> Any:
    if field.kind == "any":
        return value
    if not isinstance(value, _TYPES[field.kind]) or (field.kind == "integer" and isinstance(value, bool)):
        raise BadShape(path, f"expected {_NAMES[field.kind]}, got {_kind_of(value)}")
    return _read_items(field, value, path)


def _read_items(field: Field, value: Any, path: str) -> Any:
    if field.kind == "strings":
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise BadShape(f"{path}[{i}]", f"expected a string, got {_kind_of(item)}")
    elif field.kind == "string_map":
        for key, item in value.items():
            if not isinstance(item, str):
                raise BadShape(f"{path}.{key}", f"expected a string, got {_kind_of(item)}")
    elif field.kind == "object":
        return read_fields(field.fields, value, path)
    elif field.kind == "commands":
        return [_command(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _command(item: Any, path: str) -> tuple[str, dict[str, Any]]:
    """One command of a batch: ``(method, fields)``; an unknown method is kept for a 104 answer."""
    if not isinstance(item, dict):
        raise BadShape(path, f"expected an object, got {_kind_of(item)}")
    named = [(key, value) for key, value in item.items() if value is not None]
    if len(named) != 1:
        raise BadShape(path, "expected exactly one method name as the key of the command")
    method, request = named[0]
    fields = REQUESTS.get(method)
    if fields is None or method == "batch":
        return method, {}
    return method, read_fields(fields, request, f"{path}.{method}")


def read_request(method: str, body: Any) -> dict[str, Any]:
    """The fields of a request to ``method`` (which must be one of :data:`METHODS`)."""
    return read_fields(REQUESTS[method], body, "")
