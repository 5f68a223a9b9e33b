"""The OpenAPI document of the server API against the server that serves it.

Every documented method is served and every served method documented; every documented request
field is checked by the server with the documented type (a value of another type is a 400 naming
the field, a value of the type is not); real answers validate against the documented results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from hubbub.cluster._api.openapi import document
from hubbub.cluster._api.schema import METHODS

from .api_helpers import KEY, call
from .conftest import ClusterFactory
from .test_server_api import _request

pytestmark = pytest.mark.trio

_GOOD = {
    "string": "x",
    "boolean": True,
    "integer": 1,
    "": {"any": ["json"]},
    "array": ["x"],
}
_WRONG = {"string": 5, "boolean": "yes", "integer": "1", "array": "x", "object": 5}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def validate(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """A small JSON Schema check (the keywords the document uses); raises AssertionError."""
    schema = _resolve(doc, schema)
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else kinds
        python = {
            "object": dict,
            "array": list,
            "string": str,
            "integer": int,
            "boolean": bool,
            "null": type(None),
        }
        assert any(
            isinstance(value, python[name]) and not (name == "integer" and isinstance(value, bool))
            for name in names
        ), f"{where}: {value!r} is not {kinds}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{where}: {name} is required"
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                validate(doc, properties[name], item, f"{where}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(doc, schema["additionalProperties"], item, f"{where}.{name}")
            else:
                assert not properties or schema.get("additionalProperties", True), (
                    f"{where}: unexpected {name}"
                )
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(doc, schema["items"], item, f"{where}[{i}]")


def _good(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    schema = _resolve(doc, schema)
    kind = schema.get("type", "")
    if kind == "object":
        if "properties" in schema and schema.get("maxProperties") == 1:  # a batch command
            return {"info": {}}
        if "additionalProperties" in schema:
            return {"k": "v"}
        return {name: _good(doc, field) for name, field in schema.get("properties", {}).items()}
    if kind == "array":
        return [_good(doc, schema["items"])]
    return _GOOD[kind]


def _fields(doc: dict[str, Any], method: str) -> dict[str, Any]:
    return dict(_resolve(doc, {"$ref": f"#/components/schemas/{method}_request"})["properties"])


async def test_the_document_matches_the_server(hubbub_cluster: ClusterFactory) -> None:
    doc = document()
    assert set(doc["paths"]) == {f"/api/{name}" for name in METHODS}
    cluster = hubbub_cluster("--api-key", KEY, workers=1)
    status, text = await trio.to_thread.run_sync(_request, cluster.http, "GET", "/api/openapi.json")
    assert status == 200 and json.loads(text) == doc

    checked = 0
    for method in METHODS:
        assert (await call(cluster.http, method, {}))[0] == 200, method  # served (not 404)
        fields = _fields(doc, method)
        for name, schema in fields.items():
            schema = _resolve(doc, schema)
            kind = schema.get("type")
            if kind is None:  # any JSON value
                continue
            status, answer = await call(cluster.http, method, {name: _WRONG[kind]})
            assert status == 400, (method, name, answer)
            assert answer["error"]["message"].startswith(f"bad request: {name}"), answer
            status, answer = await call(cluster.http, method, {name: _good(doc, schema)})
            assert status == 200, (method, name, answer)
            checked += 1
        # A field the document does not name is not checked (ignored, as Centrifugo does).
        assert (await call(cluster.http, method, {"undocumented": object.__name__}))[0] == 200
    assert checked > 30


async def test_real_answers_validate_against_the_document(
    hubbub_cluster: ClusterFactory, tmp_path: Path
) -> None:
    doc = document()
    config = tmp_path / "hubbub.toml"
    config.write_text('[[channels]]\nmatch = "h/*"\nhistory_size = 10\nhistory_ttl = 60\n')
    cluster = hubbub_cluster("--api-key", KEY, "--config", str(config), workers=1)
    calls = {
        "publish_history": {"channel": "h/1", "data": {"x": 1}},
        "history_read": {"channel": "h/1", "limit": -1},
        "history_remove": {"channel": "h/1"},
        "publish": {"channel": "c", "data": {"x": 1}},
        "broadcast": {"channels": ["c", "d", ""], "data": 1},
        "channels": {},
        "unsubscribe": {"user": "u"},
        "disconnect": {"user": "u"},
        "info": {},
        "presence": {"channel": "c"},
        "history": {"channel": "c"},
    }
    for name, request in calls.items():
        method = {"publish_history": "publish", "history_read": "history"}.get(name, name)
        status, answer = await call(cluster.http, method, request)
        assert status == 200
        operation = doc["paths"][f"/api/{method}"]["post"]
        validate(doc, operation["responses"]["200"]["content"]["application/json"]["schema"], answer)
        if "error" in answer:
            assert name in ("presence", "history"), answer
        else:
            assert "result" in answer
        if name == "history_read":
            assert answer["result"]["publications"] == [{"data": {"x": 1}, "offset": 1}]
    status, answer = await call(cluster.http, "batch", {"commands": [{"info": {}}, {"publish": {}}]})
    validate(
        doc,
        doc["paths"]["/api/batch"]["post"]["responses"]["200"]["content"]["application/json"]["schema"],
        answer,
    )
    validate(doc, {"$ref": "#/components/schemas/info_result"}, answer["replies"][0]["info"])
