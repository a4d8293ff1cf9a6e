"""Request bodies: read within a byte limit, parsed as strict JSON.

Python's :mod:`json` takes more than JSON, and some of what it takes breaks later:
a 100,000-deep array raises ``RecursionError``, a 5,000-digit integer ``ValueError``,
``1e400`` reads as infinity and ``NaN`` as a float no JSON encoder writes back. The
server takes the interoperable subset (RFC 8259 with the limits of RFC 7493, I-JSON):

- UTF-8 only: no byte order mark, no UTF-16 or UTF-32 guessed from the bytes;
- numbers within a double's range, no ``NaN``, ``Infinity`` or ``-Infinity``;
- no member name twice in one object (a proxy and this server could each read a
  different one);
- arrays and objects nested at most :data:`MAX_DEPTH` deep.

Breaking one of these answers 400 (the body is not JSON this server takes). A string
holding a lone surrogate (``"\\ud800"``: valid JSON, but no UTF-8 encoder takes it)
answers 422 naming the top-level member that holds it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from contextlib import aclosing
from typing import Any, NoReturn

from starlette.requests import Request

from ._problems import Problem, invalid

__all__ = ["MAX_DEPTH", "read_body", "read_json_object"]

#: How deep arrays and objects may nest in a request body (the body itself is depth 1).
MAX_DEPTH = 32

# The largest double is about 1.8e308: 309 digits. Longer integers are refused before
# int() reads them (int() is quadratic in the length and refuses past 4,300 digits).
_MAX_INT_CHARS = 310
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(Exception):
    """A JSON rule broken while parsing; the message says which."""


def _constant(name: str) -> NoReturn:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number is out of range (beyond a double's, about 1.8e308)")
    return value


def _int(text: str) -> int:
    if len(text) <= _MAX_INT_CHARS:
        value = int(text)
        if abs(value) <= sys.float_info.max:
            return value
    raise _Refused("a number is out of range (beyond a double's, about 1.8e308)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _Refused(f"the member {name!r} appears twice in one object")
        found[name] = value
    return found


def _check_nesting(data: object) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings holding a lone surrogate.

    Raises:
        _Refused: Too deep.
        Problem: A lone surrogate (422 naming the top-level member holding it).
    """
    # (container, depth, the top-level member it sits under: None for the body itself)
    stack: list[tuple[dict[str, Any] | list[Any], int, str | None]] = []
    if isinstance(data, dict | list):
        stack.append((data, 1, None))
    while stack:
        container, depth, top = stack.pop()
        if depth > MAX_DEPTH:
            raise _Refused(f"arrays and objects nest more than {MAX_DEPTH} deep")
        items: Any = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            field = top if top is not None else key if isinstance(key, str) else "body"
            if isinstance(key, str) and _SURROGATE.search(key):
                _lone_surrogate("body" if top is None else top)
            if isinstance(value, str):
                if _SURROGATE.search(value):
                    _lone_surrogate(field)
            elif isinstance(value, dict | list):
                stack.append((value, depth + 1, field))


def _lone_surrogate(field: str) -> NoReturn:
    message = f"{field} must be valid Unicode text (found a lone surrogate)"
    raise invalid(field, message)


def parse_json(body: bytes) -> object:
    """``body`` parsed under the module's rules.

    Raises:
        Problem: 400 when it is not JSON this server takes, 422 for a lone surrogate.
    """
    try:
        text = body.decode("utf-8")
        data = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
        _check_nesting(data)
    except UnicodeDecodeError:
        raise Problem(400, "the body is not valid JSON: it must be UTF-8") from None
    except json.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        message = f"arrays and objects nest more than {MAX_DEPTH} deep"
        raise Problem(400, f"the body is not valid JSON: {message}") from None
    except _Refused as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
    if isinstance(data, str) and _SURROGATE.search(data):
        _lone_surrogate("body")
    return data


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before anything is read; without
    one (chunked), the stream is read piece by piece and reading stops at the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Problem(400, "Content-Length is not a number") from None
        if size > limit:
            raise Problem(413, f"the body must be at most {limit} bytes (got {size})")
    body = bytearray()
    # aclosing: stopping early must close the stream generator here, not at collection.
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            body += chunk
            if len(body) > limit:
                raise Problem(413, f"the body must be at most {limit} bytes")
    return bytes(body)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body parsed as a JSON object: 400 when it is not JSON, 422 when not an object."""
    data = parse_json(await read_body(request, limit))
    if not isinstance(data, dict):
        raise invalid("body", "the body must be a JSON object")
    return data
