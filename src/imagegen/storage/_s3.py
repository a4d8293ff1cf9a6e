"""How values travel over S3: user metadata as header values, a missing object as an error code.

Shared by :class:`~imagegen.storage.R2Storage` and its blocking boto3 halves; no
boto3 import at module level (it is an optional extra).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

__all__ = ["encode_metadata", "is_missing"]

logger = logging.getLogger("imagegen")

# S3 user-metadata names travel as ``x-amz-meta-<name>`` header names, which S3 and R2
# lowercase; keep names that are valid header tokens once lowercased.
_META_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Metadata values travel as HTTP header values, which must be ASCII. Printable ASCII other
# than '%' passes unchanged; '%', control characters and non-ASCII are percent-encoded
# (UTF-8), so ``urllib.parse.unquote`` always restores the original value.
_META_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
# Error codes that mean "no such object" (get_object says NoSuchKey, head_object has no
# body and so only the status). NoSuchBucket is deliberately not here: that is an error.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    encoded: dict[str, str] = {}
    for name, value in metadata.items():
        lowered = str(name).lower()
        if not _META_NAME.fullmatch(lowered):
            logger.warning("R2Storage: metadata name %r is not a header token; dropped", name)
            continue
        encoded[lowered] = quote(str(value), safe=_META_SAFE)
    return encoded


def is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING_CODES
