"""The JavaScript-compatibility helpers the codecs, the token reader and the token signer share."""

from __future__ import annotations

import pytest

from hubbub._js import JSON_PARSE, escape_lone_surrogates, js_json_dumps, js_to_string, js_to_uint8


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a":-Infinity}'])
def test_json_parse_rejects_what_javascript_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="JSON has no"):
        JSON_PARSE.decode(text)


def test_lone_surrogates_are_escaped_and_split_pairs_joined() -> None:
    assert escape_lone_surrogates('"a\ud800b"') == '"a\\ud800b"'
    assert escape_lone_surrogates('"\ud83d\ude00"') == '"\U0001f600"'
    assert js_json_dumps({"\udfff": "\ud83d\ude00"}) == '{"\\udfff":"\U0001f600"}'


@pytest.mark.parametrize(
    ("value", "string", "uint8"),
    [(True, "true", 1), ([1, None, "x"], "1,,x", 0), ({}, "[object Object]", 0), (" 0x1F ", " 0x1F ", 31)],
)
def test_string_and_uint8_conversions(value: object, string: str, uint8: int) -> None:
    assert js_to_string(value) == string
    assert js_to_uint8(value) == uint8
