"""The OpenAPI 3.1 document of the server API, written from the request table and the result shapes.

The request bodies come from :data:`.schema.REQUESTS` (what the server checks); the results are
declared here, in Centrifugo's shapes, and a test checks real answers against them.
"""

from __future__ import annotations

import json
from typing import Any

from hubbub import __version__

from .schema import METHODS, REQUESTS, Field

__all__ = ["RESULTS", "document", "document_bytes"]


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_INT = {"type": "integer"}
_STR = {"type": "string"}
_EMPTY = _object({})
_PUBLISH_RESULT = _object(
    {"offset": {**_INT, "description": "the publication's offset (channels with history)"}, "epoch": _STR}
)
_ERROR = _object({"code": _INT, "message": _STR}, ("code", "message"))
_NODE = _object(
    {
        "uid": {**_STR, "description": "the worker's id (new at each start)"},
        "name": {**_STR, "description": "host:pid"},
        "host": _STR,
        "pid": _INT,
        "worker": {"type": ["integer", "null"], "description": "the worker's slot in its cluster"},
        "version": _STR,
        "num_clients": {**_INT, "description": "open connections"},
        "num_users": {**_INT, "description": "distinct users of the connections"},
        "num_channels": {**_INT, "description": "channels with subscribers on this worker"},
        "num_subs": {**_INT, "description": "subscriptions (connection x channel)"},
        "uptime": {**_INT, "description": "seconds since the worker started"},
    },
    ("uid", "name", "version", "num_clients", "num_users", "num_channels", "num_subs", "uptime"),
)

#: The ``result`` of each method (``batch`` answers ``replies`` instead).
RESULTS: dict[str, dict[str, Any]] = {
    "publish": _PUBLISH_RESULT,
    "broadcast": _object(
        {
            "responses": {
                "type": "array",
                "description": "one per channel, in the order of `channels`",
                "items": _object({"result": _PUBLISH_RESULT, "error": _ERROR}),
            }
        },
        ("responses",),
    ),
    "history": _object(
        {
            "publications": {
                "type": "array",
                "items": _object({"data": {}, "offset": _INT}, ("data", "offset")),
            },
            "offset": {**_INT, "description": "the channel's newest offset"},
            "epoch": _STR,
        },
        ("publications", "offset", "epoch"),
    ),
    "history_remove": _EMPTY,
    "presence": _EMPTY,
    "presence_stats": _EMPTY,
    "channels": _object(
        {
            "channels": {
                "type": "object",
                "additionalProperties": _object({"num_clients": _INT}, ("num_clients",)),
            }
        },
        ("channels",),
    ),
    "unsubscribe": _EMPTY,
    "disconnect": _EMPTY,
    "info": _object({"nodes": {"type": "array", "items": _NODE}}, ("nodes",)),
}

_SUMMARIES = {
    "publish": "Publish data into a channel",
    "broadcast": "Publish the same data into many channels",
    "history": "Read a channel's history (channels with history only)",
    "history_remove": "Remove a channel's stored publications (offset and epoch go on)",
    "presence": "Not available: hubbub keeps no presence yet (error 108)",
    "presence_stats": "Not available: hubbub keeps no presence yet (error 108)",
    "channels": "Active channels of the whole cluster and their subscriber counts",
    "unsubscribe": "Unsubscribe a user's connections (every worker) from a channel, or from all",
    "disconnect": "Close a user's connections on every worker",
    "info": "Every live worker of the cluster",
    "batch": "Several calls in one request",
}


def _field_schema(field: Field) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {
        "string": {"type": "string"},
        "boolean": {"type": "boolean"},
        "integer": {"type": "integer"},
        "any": {},
        "strings": {"type": "array", "items": {"type": "string"}},
        "string_map": {"type": "object", "additionalProperties": {"type": "string"}},
        "commands": {
            "type": "array",
            "items": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    name: {"$ref": f"#/components/schemas/{name}_request"}
                    for name in METHODS
                    if name != "batch"
                },
            },
        },
    }
    schema = _request_schema(field.fields) if field.kind == "object" else dict(kinds[field.kind])
    schema["description"] = field.doc
    return schema


def _request_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    required = tuple(field.name for field in fields if field.required)
    return _object({field.name: _field_schema(field) for field in fields}, required)


def _response(name: str) -> dict[str, Any]:
    if name == "batch":
        schema = _object(
            {
                "replies": {
                    "type": "array",
                    "description": 'one per command: `{"<method>": <result>}` or `{"error": ...}`',
                    "items": {"type": "object"},
                }
            },
            ("replies",),
        )
    else:
        schema = _object(
            {
                "result": {"$ref": f"#/components/schemas/{name}_result"},
                "error": {"$ref": "#/components/schemas/error"},
            }
        )
    return {
        "description": "the result, or an error of the call",
        "content": {"application/json": {"schema": schema}},
    }


def _operation(name: str) -> dict[str, Any]:
    problem = {"application/json": {"schema": _object({"error": {"$ref": "#/components/schemas/error"}})}}
    return {
        "post": {
            "operationId": name,
            "summary": _SUMMARIES[name],
            "security": [{"apiKey": []}, {"authorization": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}_request"}}},
            },
            "responses": {
                "200": _response(name),
                "400": {"description": "not JSON, or a field of the wrong type (named)", "content": problem},
                "401": {"description": "missing or wrong API key"},
                "413": {"description": "body larger than api_max_body"},
            },
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    schemas: dict[str, Any] = {"error": _ERROR}
    for name in METHODS:
        schemas[f"{name}_request"] = _request_schema(REQUESTS[name])
        if name in RESULTS:
            schemas[f"{name}_result"] = RESULTS[name]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubbub server API",
            "version": __version__,
            "description": "Centrifugo's HTTP server API (v5/v6) request and response shapes; see docs/server-api.md.",
        },
        "paths": {f"/api/{name}": _operation(name) for name in METHODS},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "authorization": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`apikey <KEY>`",
                },
            },
        },
    }


def document_bytes() -> bytes:
    return json.dumps(document(), indent=1).encode()
