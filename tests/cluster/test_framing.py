"""frame_message: the bytes websockets serializes, from a kept header once a length has been seen."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from hubbub.cluster._transport import framing
from hubbub.cluster._transport.framing import frame_message


@given(st.text(max_size=300))
def test_text_frames_match_websockets(text: str) -> None:
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert frame_message(text) == expected
    assert frame_message(text) == expected  # again, now from the kept header


@given(st.binary(max_size=300))
def test_binary_frames_match_websockets(data: bytes) -> None:
    assert frame_message(data) == Frame(Opcode.BINARY, data).serialize(mask=False)


def test_length_field_boundaries() -> None:
    for length in (0, 125, 126, 127, 65535, 65536, 70000):
        assert frame_message("a" * length) == Frame(Opcode.TEXT, b"a" * length).serialize(mask=False)
        assert frame_message(b"b" * length) == Frame(Opcode.BINARY, b"b" * length).serialize(mask=False)


def test_kept_headers_are_bounded() -> None:
    for length in range(framing._MAX_KEPT + 100):
        frame_message(b"x" * length)
    assert len(framing._binary_headers) == framing._MAX_KEPT
    tail = b"y" * (framing._MAX_KEPT + 50)  # not kept: serialized by websockets every time
    assert frame_message(tail) == Frame(Opcode.BINARY, tail).serialize(mask=False)
