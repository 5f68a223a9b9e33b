"""What the emitter raises besides redis-py's own errors."""

from __future__ import annotations

from hubbub.broker import StreamPosition

__all__ = ["BroadcastError", "EncodeError"]


class EncodeError(TypeError):
    """The data cannot travel in the broker's envelope: msgpack cannot write it (an object of a
    type it does not know, such as a ``set`` or a ``datetime``), or it is nested too deeply.

    Nothing was sent. The message names the channel and the reason.
    """


class BroadcastError(Exception):
    """Redis refused some publications of a :meth:`~hubbub.emitter.Emitter.broadcast` (an error
    reply: an ACL denial, a key of the wrong type, ``OOM``); the others were published.

    ``results`` has one item per channel, in the order given: the publication's
    :class:`~hubbub.broker.StreamPosition` (a channel with history), ``None`` (published, no
    history), or the exception Redis answered for that channel. ``errors`` maps each refused
    channel to its exception.
    """

    def __init__(self, channels: list[str], results: list[StreamPosition | Exception | None]) -> None:
        self.results = results
        self.errors = {
            channel: result
            for channel, result in zip(channels, results, strict=True)
            if isinstance(result, Exception)
        }
        failed = ", ".join(f"{channel!r}: {error}" for channel, error in self.errors.items())
        super().__init__(f"{len(self.errors)} of {len(results)} publications were refused: {failed}")
