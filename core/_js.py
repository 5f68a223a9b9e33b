"""JavaScript's own conversions, for data that must read or print as a SocketCluster peer's would.

``JSON.parse`` (no ``NaN``/``Infinity`` literals), ``JSON.stringify`` (numbers, key order, lone
surrogates), ``String()``, ``Number()``, ``Uint8Array`` element assignment and ``Date.toISOString``.
Used by the codecs, the token reader and the server's token signer.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "JSON_PARSE",
    "JSON_PARSE_LONG_INTEGERS",
    "escape_lone_surrogates",
    "js_date_iso",
    "js_json_dumps",
    "js_number",
    "js_to_number",
    "js_to_string",
    "js_to_uint8",
]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name[0]!r}: JSON has no {name}")


#: A decoder that accepts what ``JSON.parse`` accepts: Python's own also reads ``NaN`` and ``Infinity``.
JSON_PARSE = json.JSONDecoder(parse_constant=_reject_constant)


def _js_integer(text: str) -> int | float:
    """An integer literal as ``JSON.parse`` holds it when Python's ``int`` refuses it (over 4300 digits)."""
    try:
        return int(text)
    except ValueError:
        return float(text)  # a double, infinite past 1.8e308: JSON.stringify then writes null


#: :data:`JSON_PARSE` for texts it refused for an integer literal too long for ``int``.
JSON_PARSE_LONG_INTEGERS = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_js_integer)

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_lone_surrogates(text: str) -> str:
    """JSON text as ``JSON.stringify`` writes it: surrogate pairs joined, lone surrogates as ``\\uXXXX``.

    A surrogate pair split over two code points is one character in JavaScript's UTF-16 strings.
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SURROGATE.sub(_escape_surrogate, joined)


# -- String() and Number() -------------------------------------------------------------------------------

_JS_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)")
_JS_SPACE = (  # what String.prototype.trim removes
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def js_to_number(value: Any) -> float:
    """JavaScript's ``Number(value)`` for JSON-like values (NaN for anything that is not a number)."""
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):  # [] -> "", [x] -> String(x), longer arrays are NaN unless empty strings
        return js_to_number(",".join("" if v is None else js_to_string(v) for v in value))
    if isinstance(value, str):
        text = value.strip(_JS_SPACE)
        if not text:
            return 0.0
        if _JS_NUMBER.fullmatch(text):
            return float(text.replace("Infinity", "inf"))
        for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
            if text[:2].lower() == prefix:
                try:
                    return float(int(text[2:], base)) if text[2:].isalnum() else math.nan
                except ValueError:
                    return math.nan
    return math.nan


def js_to_string(value: Any) -> str:
    """JavaScript's ``String(value)`` for JSON-like values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join("" if v is None else js_to_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def js_to_uint8(value: Any) -> int:
    """A Uint8Array element assignment: ``ToUint8(ToNumber(value))``."""
    number = js_to_number(value)
    if math.isnan(number) or math.isinf(number):
        return 0
    return int(number) % 256


# -- JSON.stringify and Date.toISOString ---------------------------------------------------------------

_MAX_DATE_MS = 8.64e15


def js_date_iso(seconds: float) -> str | None:
    """``new Date(seconds * 1000).toISOString()`` (e.g. ``2026-11-21T15:11:50.000Z``).

    ``None`` where JavaScript has an invalid date (``JSON.stringify`` then writes ``null``).
    """
    millis = seconds * 1000
    if not math.isfinite(millis) or abs(millis) > _MAX_DATE_MS:
        return None
    ms = math.trunc(millis)
    days, ms_of_day = divmod(ms, 86_400_000)
    year, month, day = _civil_from_days(days)
    secs, milli = divmod(ms_of_day, 1000)
    hour, rest = divmod(secs, 3600)
    minute, second = divmod(rest, 60)
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{'-' if year < 0 else '+'}{abs(year):06d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of ``days`` since 1970-01-01, for any year."""
    if -719_162 <= days <= 2_932_896:  # datetime's own range (years 1..9999)
        date = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
        return date.year, date.month, date.day
    shifted = days + 719_468  # days since 0000-03-01
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def js_number(value: float) -> str:
    """``JSON.stringify`` of a number (ECMAScript Number::toString; non-finite → ``null``)."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, the same digits JavaScript picks; only the layout
    # differs. Rewrite it as value = 0.DIGITS x 10**n and lay it out by ECMAScript's rules.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    significant = all_digits.lstrip("0")
    n = len(whole) + int(exponent or 0) - (len(all_digits) - len(significant))
    digits = significant.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        exp = n - 1
        text = f"{digits[0]}{'.' + digits[1:] if k > 1 else ''}e{'+' if exp >= 0 else '-'}{abs(exp)}"
    return sign + text


_string_encoder = json.JSONEncoder(ensure_ascii=False)
_ARRAY_INDEX_MAX = 2**32 - 2


def _js_string_literal(value: str) -> str:
    """``JSON.stringify`` of a string."""
    return escape_lone_surrogates(_string_encoder.encode(value))


def _is_array_index(key: str) -> bool:
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) <= _ARRAY_INDEX_MAX


def _js_key_order(keys: Iterable[str]) -> list[str]:
    """JavaScript's own-property order: array-index keys ascending, then the rest in insertion order."""
    keys = list(keys)
    indexes = sorted((k for k in keys if _is_array_index(k)), key=int)
    if not indexes:
        return keys
    return indexes + [k for k in keys if not _is_array_index(k)]


def js_json_dumps(value: Any) -> str:
    """``JSON.stringify(value)`` for JSON-like Python data (dict, list/tuple, str, int, float, bool, None).

    Compact, non-ASCII kept as is, JavaScript number formatting and object key order. Dict keys must be
    strings (ints are converted, as :func:`json.dumps` does). Raises :class:`TypeError` otherwise.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _js_string_literal(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, dict):
        items: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)
            elif not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            items[key] = item
        return (
            "{"
            + ",".join(f"{_js_string_literal(k)}:{js_json_dumps(items[k])}" for k in _js_key_order(items))
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(js_json_dumps(item) for item in value) + "]"
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
