"""sc-codec-min-bin 3.0: MessagePack packets with the ``e``/``p``/``r`` envelopes (placeholder)."""

from __future__ import annotations

from typing import Any

import msgpack

from .codec import CodecError

__all__ = ["MinBinCodec"]


class MinBinCodec:
    """MessagePack codec, byte-compatible with sc-codec-min-bin (binary frames)."""

    name = "minbin"
    binary = True

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, message: str | bytes) -> Any:
        if isinstance(message, str):
            raise CodecError("min-bin messages must be binary frames")
        try:
            return msgpack.unpackb(message, raw=False)
        except Exception as exc:
            raise CodecError(str(exc)) from exc
