"""Codecs by name, as a server's ``codec`` setting or a client's option names them."""

from __future__ import annotations

from ._codec import Codec
from ._json_codec import JsonCodec
from ._minbin_codec import MinBinCodec

__all__ = ["get_codec"]


def get_codec(name: str) -> Codec:
    """The codec called ``name``: ``"json"`` or ``"minbin"``."""
    if name == "json":
        return JsonCodec()
    if name == "minbin":
        return MinBinCodec()
    raise ValueError(f"unknown codec {name!r}: expected 'json' or 'minbin'")
