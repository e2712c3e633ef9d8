"""JSON text read without losing what the proto3 mapping needs to judge it.

The standard library's parser is used with hooks, so that:
- an object keeps every key it was given, in order, repeats included (a plain dict
  would keep only the last value of a repeated key, silently);
- a number keeps its exact text and is never converted: `1e5000000` stays ten
  characters instead of becoming a five-million-digit value, and `0.1` never passes
  through a binary float. Whoever needs the value decides, from the text, in bounded
  time (see `transcode`);
- `NaN` and `Infinity`, which are not JSON, are refused.

The whole text must be UTF-8 (RFC 8259), so bytes in another encoding are refused
rather than guessed.
"""

from __future__ import annotations

import json
from typing import Any


class JsonObject(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in order, repeated keys kept."""


class JsonNumber(str):
    """A JSON number as its exact text, e.g. "12.50", "-3", "1e5"."""


class JsonError(ValueError):
    """The text is not one JSON value in UTF-8."""


def _no_constants(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=JsonObject,
    parse_float=JsonNumber,
    parse_int=JsonNumber,
    parse_constant=_no_constants,
)


def read_json(raw: bytes) -> Any:
    """The JSON value of a UTF-8 text: JsonObject, list, str, JsonNumber, bool or None.

    Raises JsonError for anything else, nesting too deep for the parser included.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonError("is not UTF-8") from None
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise JsonError("is nested too deeply") from None
    except ValueError as error:
        raise JsonError("is not valid JSON") from error
