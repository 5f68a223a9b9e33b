"""Per-channel options chosen by channel-name pattern: history now, presence and join/leave later.

A :class:`ChannelRules` is an ordered list of ``(pattern, options)``; a channel gets the options
of the first pattern that matches its whole name (:mod:`fnmatch` globs: ``*`` matches anything,
``/`` included, ``?`` one character, ``[abc]`` a set), and :data:`PLAIN` when none does.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._config_file import CHANNELS_KEY, read_config_file
from ._history import DEFAULT_META_TTL, HistoryOptions

__all__ = ["ChannelOptions", "ChannelRule", "ChannelRules"]

#: Channel names whose options are remembered (a cache; a rule set is immutable).
_CACHE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class ChannelOptions:
    """What a channel keeps and tells. ``history_size`` 0 means no history (the plain path).

    ``history_ttl``: seconds the history is kept after the last publication.
    ``history_meta_ttl``: seconds its offset counter and epoch are kept (see
    :class:`~hubbub.broker.HistoryOptions`).
    """

    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = DEFAULT_META_TTL
    presence: bool = False
    join_leave: bool = False
    history: HistoryOptions | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.history_size < 0:
            raise ValueError(f"history_size must not be negative, got {self.history_size}")
        history = None
        if self.history_size:
            if not self.history_ttl > 0:
                raise ValueError("a channel with history_size needs a positive history_ttl (seconds)")
            history = HistoryOptions(self.history_size, float(self.history_ttl), float(self.history_meta_ttl))
        object.__setattr__(self, "history", history)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "channel options") -> ChannelOptions:
        """Build from a TOML table / dict, with an error that names the bad key."""
        known = {"history_size": int, "history_ttl": float, "history_meta_ttl": float, "presence": bool,
                 "join_leave": bool}  # fmt: skip
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            kind = known.get(key)
            if kind is None:
                raise ValueError(f"{where}: unknown option {key!r} (known: {', '.join(sorted(known))})")
            if kind is bool and type(value) is not bool:
                raise ValueError(f"{where}: {key} must be true or false, got {value!r}")
            if kind is int and type(value) is not int:
                raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
            if kind is float and (type(value) not in (int, float)):
                raise ValueError(f"{where}: {key} must be a number of seconds, got {value!r}")
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None


#: The options of a channel that matches no rule.
PLAIN = ChannelOptions()


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """Options for the channels whose names match ``match`` (a glob over the whole name)."""

    match: str
    options: ChannelOptions

    def __post_init__(self) -> None:
        if not isinstance(self.match, str) or not self.match:
            raise ValueError(f"a channel rule needs a non-empty match pattern, got {self.match!r}")


class ChannelRules:
    """Ordered rules; :meth:`options` gives a channel the options of the first rule that matches."""

    __slots__ = ("_cache", "_regex", "rules")

    def __init__(self, rules: Iterable[ChannelRule] = ()) -> None:
        self.rules: tuple[ChannelRule, ...] = tuple(rules)
        self._regex = [re.compile(fnmatch.translate(rule.match)) for rule in self.rules]
        self._cache: dict[str, ChannelOptions] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChannelRules, (self.rules,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelRules) and other.rules == self.rules

    def __hash__(self) -> int:
        return hash(self.rules)

    def __repr__(self) -> str:
        return f"ChannelRules({list(self.rules)!r})"

    @property
    def any_history(self) -> bool:
        """Whether some rule gives channels history."""
        return any(rule.options.history is not None for rule in self.rules)

    def options(self, channel: str) -> ChannelOptions:
        """The options of ``channel``: the first matching rule's, else :data:`PLAIN`."""
        cached = self._cache.get(channel)
        if cached is not None:
            return cached
        found = PLAIN
        for regex, rule in zip(self._regex, self.rules, strict=True):
            if regex.match(channel):
                found = rule.options
                break
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[channel] = found
        return found

    def history(self, channel: str) -> HistoryOptions | None:
        """The history options of ``channel``, None when it keeps no history."""
        return self.options(channel).history if self.rules else None

    @classmethod
    def from_config(cls, tables: Sequence[Mapping[str, Any]]) -> ChannelRules:
        """Rules from ``[[channels]]`` TOML tables: ``match`` plus option keys.

        Raises :class:`ValueError` naming the bad table and key.
        """
        if not isinstance(tables, list | tuple):
            raise ValueError(
                f"{CHANNELS_KEY} must be an array of tables ([[{CHANNELS_KEY}]]), got {tables!r}"
            )
        rules = []
        for index, table in enumerate(tables):
            where = f"[[{CHANNELS_KEY}]] #{index + 1}"
            if not isinstance(table, Mapping):
                raise ValueError(f"{where}: must be a table, got {table!r}")
            values = dict(table)
            match = values.pop("match", None)
            if not isinstance(match, str) or not match:
                raise ValueError(f'{where}: needs match = "<glob>" (e.g. "chat/*")')
            rules.append(ChannelRule(match, ChannelOptions.from_mapping(values, where=f"{where} ({match})")))
        return cls(rules)

    @classmethod
    def from_config_file(cls, path: str | os.PathLike[str]) -> ChannelRules:
        """The rules of hubbub's TOML config file (``hubbub run --config``): its ``[[channels]]``
        tables, read as the workers read them, so that another process (an emitter) gives every
        channel the options the workers give it.

        Raises :class:`ValueError` naming the file: it cannot be read, is not TOML, or has a bad rule.
        """
        return cls.from_config_data(read_config_file(path), path)

    @classmethod
    def from_config_data(cls, data: Mapping[str, Any], path: str | os.PathLike[str]) -> ChannelRules:
        """The rules in ``data``, the config file at ``path`` as read (only for the error message)."""
        try:
            return cls.from_config(data.get(CHANNELS_KEY, []))
        except ValueError as error:
            raise ValueError(f"config file {os.fspath(path)}: {error}") from None
