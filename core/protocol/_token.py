"""Reading a signed auth token (JWT) without verifying it, as a SocketCluster client does.

A client never holds the server's key: when the server pushes ``#setAuthToken`` the client keeps the
signed string and exposes its *claims* by base64url-decoding the middle part and parsing it as JSON
(socketcluster-client's ``_extractAuthTokenData``). Nothing here checks the signature or the expiry;
the server (:mod:`hubbub.cluster.auth`) does that.

* :func:`decode_unverified` is the strict form for Python callers: a JSON object, or
  :class:`TokenDecodeError`.
* :func:`extract_auth_token_data` mirrors the JavaScript client exactly: ``None`` for a non-string or a
  token without a middle part, the parsed JSON value when it parses, otherwise the decoded text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .._js import JSON_PARSE

__all__ = ["TokenDecodeError", "decode_unverified", "extract_auth_token_data"]


class TokenDecodeError(ValueError):
    """The token's payload could not be read as a JSON object."""


_STD_TO_URL = str.maketrans({"+": "-", "/": "_"})


def _b64decode_lenient(segment: str) -> bytes:
    """Decode base64 or base64url leniently (padding optional, whitespace ignored), like Node's Buffer."""
    text = "".join(segment.split()).rstrip("=").translate(_STD_TO_URL)
    if len(text) % 4 == 1:  # Node ignores a dangling sixth of a byte; b64decode would refuse it
        text = text[:-1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_unverified(token: str) -> dict[str, Any]:
    """The claims of ``token`` (``header.payload.signature``), **without** verifying the signature.

    Raises :class:`TokenDecodeError` if ``token`` is not a string with a middle part that decodes to a
    JSON object. The returned dict keeps the payload's key order.
    """
    if not isinstance(token, str):
        raise TokenDecodeError(f"token must be a string, not {type(token).__name__}")
    parts = token.split(".")
    if len(parts) < 2:
        raise TokenDecodeError("token has no payload part")
    try:
        text = _b64decode_lenient(parts[1]).decode("utf-8", errors="replace")
        claims = JSON_PARSE.decode(text)
    except (binascii.Error, ValueError) as exc:
        raise TokenDecodeError(f"token payload is not base64url-encoded JSON: {exc}") from exc
    if not isinstance(claims, dict):
        raise TokenDecodeError(f"token payload is a JSON {type(claims).__name__}, not an object")
    return claims


def extract_auth_token_data(signed_token: object) -> Any:
    """What socketcluster-client 20 exposes as ``authToken`` for ``signed_token``.

    ``None`` when ``signed_token`` is not a string or has no ``.``-separated second part; the parsed
    JSON value of the middle part when it decodes; otherwise the decoded text (or, when even base64
    fails, the encoded middle part itself).
    """
    if not isinstance(signed_token, str):
        return None
    parts = signed_token.split(".")
    if len(parts) < 2:
        return None
    data: str = parts[1]
    try:
        data = _b64decode_lenient(data).decode("utf-8", errors="replace")
        return JSON_PARSE.decode(data)
    except (binascii.Error, ValueError):
        return data
