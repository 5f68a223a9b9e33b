"""Logging set-up of ``hubbub run``: the level, and lines as text or as one JSON object each."""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["JsonFormatter", "configure_logging"]

_TEXT = "%(asctime)s %(levelname)s {worker}%(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the worker, ``record.hubbub``'s keys.

    An exception is written as ``exception`` (its formatted traceback, one string).
    """

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        fields = getattr(record, "hubbub", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, log_format: str = "text", worker: int | None = None) -> None:
    """Log at ``level`` to stderr, as ``text`` lines or ``json`` objects (``worker``: the slot, if any)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        handler.setFormatter(
            logging.Formatter(_TEXT.format(worker="" if worker is None else f"worker-{worker} "))
        )
    logging.basicConfig(level=level, handlers=[handler], force=True)
