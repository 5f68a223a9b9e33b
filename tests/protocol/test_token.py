"""Reading a token's claims without the key, as socketcluster-client does."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hubbub.protocol import TokenDecodeError, decode_unverified, extract_auth_token_data

# Captured (S17): the token socketcluster-server 20 pushed with #setAuthToken.
ALICE_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MjczOTY0LCJleHAiOjE3OTUzNjAzNjR9"
    ".pEbwxxXcxkPAGF6m1LVeFuwngF3j0H2s4fUDa9RfGkQ"
)


def part(text: str, *, url: bool = True, pad: bool = False) -> str:
    raw = text.encode()
    encoded = (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode()
    return encoded if pad else encoded.rstrip("=")


def test_decode_the_captured_token() -> None:
    claims = decode_unverified(ALICE_TOKEN)
    assert claims == {"username": "alice", "iat": 1795273964, "exp": 1795360364}
    assert list(claims) == ["username", "iat", "exp"]
    assert extract_auth_token_data(ALICE_TOKEN) == claims


def test_signature_is_not_checked() -> None:
    forged = ALICE_TOKEN.rsplit(".", 1)[0] + ".not-a-signature"
    assert decode_unverified(forged)["username"] == "alice"
    assert decode_unverified("x." + part('{"a":1}'))["a"] == 1  # only the middle part matters


@pytest.mark.parametrize(
    "payload",
    [
        part('{"name":"zoë ~~~ ???"}'),
        part('{"name":"zoë ~~~ ???"}', pad=True),
        part('{"name":"zoë ~~~ ???"}', url=False),
    ],
)
def test_lenient_base64_like_node(payload: str) -> None:
    assert decode_unverified(f"h.{payload}.s") == {"name": "zoë ~~~ ???"}


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "h." + part("[1,2]") + ".s",
        "h." + part("not json") + ".s",
        "h." + part('{"a": NaN}') + ".s",
        "h.!!!!.s",
    ],
)
def test_decode_unverified_rejects(token: str) -> None:
    with pytest.raises(TokenDecodeError):
        decode_unverified(token)


def test_decode_unverified_rejects_non_strings() -> None:
    with pytest.raises(TokenDecodeError, match="must be a string"):
        decode_unverified(b"a.b.c")  # type: ignore[arg-type]
    assert issubclass(TokenDecodeError, ValueError)


@pytest.mark.parametrize(
    ("token", "data"),
    [
        (None, None),
        (42, None),
        ("garbage", None),
        ("h." + part("[1,2]") + ".s", [1, 2]),
        ("h." + part("just text") + ".s", "just text"),
        ("h." + part('"a string"'), "a string"),
        ("h..s", ""),
    ],
)
def test_extract_auth_token_data_mirrors_the_js_client(token: object, data: Any) -> None:
    assert extract_auth_token_data(token) == data
