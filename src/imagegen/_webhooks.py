"""Webhook signature verification for Replicate (Standard Webhooks) and fal (Ed25519).

Pure functions: no I/O, no clock of their own. The caller passes the raw body bytes
exactly as received, the request headers (any ``Mapping``; names are matched
case-insensitively, so a plain ``dict``, ``httpx.Headers`` or Starlette's ``Headers``
all work) and the current Unix time. Every verification failure raises
:class:`~imagegen.WebhookVerificationError` with a reason that never contains the
secret or the expected signature.

Replicate signs with the Standard Webhooks (Svix) scheme: HMAC-SHA256 over
``"{webhook-id}.{webhook-timestamp}." + body`` keyed by the base64 part of the
``whsec_...`` secret, sent as space-separated ``v1,<base64>`` entries in
``webhook-signature``. fal signs ``request_id\\nuser_id\\ntimestamp\\nsha256_hex(body)``
with Ed25519 and publishes the public keys as a JWKS; checking those needs the
optional ``cryptography`` package.

Webhook URLs carry secrets (a callback token, the credentials of an alert
receiver's URL), and httpx logs every request's URL at INFO: while a request whose
URL carries one runs, :func:`hidden_in_logs` masks them in httpx's log records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from ._distribution import install_hint
from ._errors import InvalidConfig, WebhookVerificationError

__all__ = [
    "CALLBACK_TOKEN_PARAM",
    "DEFAULT_TOLERANCE",
    "hidden_in_logs",
    "install_log_redaction",
    "sign_standard_webhook",
    "url_secrets",
    "verify_fal_webhook",
    "verify_standard_webhook",
]

DEFAULT_TOLERANCE = 300.0
"""Allowed clock skew in seconds, either way (the Standard Webhooks reference uses ±5 min)."""

_SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret
# Twenty digits is far past any real Unix time, and the cap keeps absurd values
# out of int() and out of error messages.
_UNIX_SECONDS = re.compile(r"[0-9]{1,20}")
_ED25519_SIGNATURE_HEX = re.compile(r"[0-9a-fA-F]{128}")
_ED25519_KEY_BYTES = 32
#: The query parameter that carries a callback token (``ProviderContext.webhook_token``)
#: in a callback URL; its value is masked in every log record imagegen filters.
CALLBACK_TOKEN_PARAM: Final = "imagegen_token"  # noqa: S105 - a parameter's name
#: The loggers whose records :func:`install_log_redaction` masks: httpx logs every
#: request's URL at INFO; uvicorn's access log shows the URLs webhooks are posted to.
_REDACTED_LOGGERS = ("httpx", "uvicorn.access")
_MIN_SECRET = 4  # shorter strings are masked by no one (they would mangle every line)
_CALLBACK_TOKEN = re.compile(
    rf"({CALLBACK_TOKEN_PARAM}(?:=|%3D|%253D))[A-Za-z0-9_\-]+", re.IGNORECASE
)
_hidden: Counter[str] = Counter()  # the secrets of requests in flight, in each spelling
_FAL_MISSING_CRYPTOGRAPHY = (
    f"fal webhook verification needs the 'cryptography' package: {install_hint('fal-webhooks')}"
)


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign a delivery the way Replicate does and return the ``webhook-signature`` entry.

    Meant for tests (this library's and its users'): send the result as the
    ``webhook-signature`` header together with ``webhook-id: msg_id`` and
    ``webhook-timestamp: timestamp``, and :func:`verify_standard_webhook` accepts it.

    Args:
        secret: The ``whsec_<base64>`` signing secret (the prefix is optional).
        msg_id: The ``webhook-id`` value.
        timestamp: The ``webhook-timestamp`` value, Unix seconds.
        body: The raw request body.

    Returns:
        ``"v1,<base64 HMAC-SHA256>"``.

    Raises:
        WebhookVerificationError: The secret is not valid base64.
    """
    key = standard_webhook_key(secret)
    digest = _standard_webhook_digest(key, msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_standard_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """Check a Replicate (Standard Webhooks) delivery and return its ``webhook-id``.

    The delivery passes when ``webhook-timestamp`` is within ``tolerance`` seconds of
    ``now`` (either way, bounds included) and any ``v1`` entry of
    ``webhook-signature`` matches; entries of other versions (such as the asymmetric
    ``v1a``) are skipped, and several ``v1`` entries are normal during key rotation.

    A verified delivery can still be a replay inside the tolerance window, or a
    retry of one already handled: callers should remember the returned id.

    Args:
        secret: The ``whsec_<base64>`` signing secret. Without the prefix the whole
            string is decoded as base64, as the reference library does.
        headers: The request headers; names are matched case-insensitively.
        body: The raw request body, exactly as received (never re-serialised JSON).
        now: The current Unix time in seconds.
        tolerance: Allowed skew in seconds; ``math.inf`` turns the time check off.

    Returns:
        The ``webhook-id`` header's value.

    Raises:
        WebhookVerificationError: The secret is not valid base64, a header is
            missing or repeated with different values, the timestamp is not whole
            Unix seconds or is outside the tolerance, or no ``v1`` signature matches.
        InvalidConfig: ``now`` is not finite or ``tolerance`` is negative or NaN.
    """
    _check_clock(now, tolerance)
    key = standard_webhook_key(secret)
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    _check_timestamp("webhook-timestamp", timestamp, now=now, tolerance=tolerance)

    # The header's digits are what the sender signed, so they are signed as received.
    expected = _standard_webhook_digest(key, msg_id, timestamp, body)
    for entry in signatures.split():
        version, comma, encoded = entry.partition(",")
        if version != "v1" or not comma:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except ValueError:
            # Not base64 (binascii.Error) or not ASCII: it cannot be our signature,
            # but a later entry still might be.
            continue
        if hmac.compare_digest(candidate, expected):
            return msg_id
    raise WebhookVerificationError("no v1 entry of webhook-signature matches the body")


def verify_fal_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    jwks: Mapping[str, Any],
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """Check a fal delivery against fal's published Ed25519 keys and return its request id.

    The signed message is ``request_id\\nuser_id\\ntimestamp\\nsha256_hex(body)``,
    built from the ``X-Fal-Webhook-Request-Id``, ``-User-Id`` and ``-Timestamp``
    headers; ``X-Fal-Webhook-Signature`` holds the Ed25519 signature in hex. The
    delivery passes when the timestamp is within ``tolerance`` of ``now`` and the
    signature verifies under any key of the JWKS.

    This function does no I/O: the caller fetches the JWKS
    (``https://rest.alpha.fal.ai/.well-known/jwks.json``) and caches it; public
    implementations keep it for 24 hours.

    Args:
        headers: The request headers; names are matched case-insensitively.
        body: The raw request body, exactly as received.
        jwks: The parsed JWKS document, ``{"keys": [{"kty": "OKP", "crv": "Ed25519",
            "x": "<base64url>"}, ...]}``. Keys of other types are ignored.
        now: The current Unix time in seconds.
        tolerance: Allowed skew in seconds; ``math.inf`` turns the time check off.

    Returns:
        The ``X-Fal-Webhook-Request-Id`` header's value.

    Raises:
        WebhookVerificationError: ``cryptography`` is not installed, the JWKS has no
            usable Ed25519 key, a header is missing or malformed, the timestamp is
            outside the tolerance, or no key verifies the signature.
        InvalidConfig: ``now`` is not finite or ``tolerance`` is negative or NaN.
    """
    try:
        # Imported here so that the library itself does not depend on cryptography;
        # only users who verify fal webhooks need it.
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
            Ed25519PublicKey,
        )
    except ImportError as exc:
        raise WebhookVerificationError(_FAL_MISSING_CRYPTOGRAPHY) from exc

    _check_clock(now, tolerance)
    raw_keys = _ed25519_keys(jwks)
    request_id = _header(headers, "X-Fal-Webhook-Request-Id")
    user_id = _header(headers, "X-Fal-Webhook-User-Id")
    timestamp = _header(headers, "X-Fal-Webhook-Timestamp")
    signature_hex = _header(headers, "X-Fal-Webhook-Signature")
    _check_timestamp("X-Fal-Webhook-Timestamp", timestamp, now=now, tolerance=tolerance)
    # A regex rather than bytes.fromhex alone, which would also accept spaces.
    if _ED25519_SIGNATURE_HEX.fullmatch(signature_hex) is None:
        raise WebhookVerificationError(
            "X-Fal-Webhook-Signature is not a 64-byte Ed25519 signature in hex"
        )
    signature = bytes.fromhex(signature_hex)

    message = "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode()
    for raw in raw_keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
        except InvalidSignature:
            # fal may publish several keys (rotation); any one may have signed.
            continue
        return request_id
    raise WebhookVerificationError("no JWKS key verifies X-Fal-Webhook-Signature")


def _check_clock(now: float, tolerance: float) -> None:
    # NaN compares false with everything, so a NaN here would silently switch the
    # timestamp check off: refuse it instead of failing open.
    if not math.isfinite(now):
        raise InvalidConfig(f"now must be a finite Unix time, not {now!r}", field="now")
    if not tolerance >= 0:
        raise InvalidConfig(
            f"tolerance must be a non-negative number of seconds, not {tolerance!r}",
            field="tolerance",
        )


def _header(headers: Mapping[str, str], name: str) -> str:
    """The value of header ``name``, matched case-insensitively; required and unambiguous.

    Works for any mapping: case-insensitive ones (httpx, Starlette) and plain dicts
    whose keys are spelt in any case. A header given twice with different values is
    refused rather than guessed at.
    """
    wanted = name.lower()
    found: str | None = None
    for key, value in headers.items():
        # isascii() first: str.lower() maps a few non-ASCII letters (the Kelvin sign)
        # onto ASCII ones, and header names are ASCII.
        if not (key.isascii() and key.lower() == wanted):
            continue
        # Surrounding whitespace is never part of an HTTP field value (RFC 9110 §5.5).
        stripped = value.strip()
        if found is not None and stripped != found:
            raise WebhookVerificationError(f"{name} header appears twice with different values")
        found = stripped
    if not found:
        raise WebhookVerificationError(f"missing {name} header")
    return found


def _check_timestamp(name: str, text: str, *, now: float, tolerance: float) -> None:
    """Refuse a timestamp that is not whole Unix seconds or is outside ``now ± tolerance``."""
    if _UNIX_SECONDS.fullmatch(text) is None:
        raise WebhookVerificationError(f"{name} is not a whole number of Unix seconds")
    timestamp = int(text)
    # int-to-float comparisons are exact in Python; no subtraction, so no overflow.
    if timestamp < now - tolerance:
        raise WebhookVerificationError(
            f"{name} {timestamp} is older than the {tolerance:g} s tolerance"
        )
    if timestamp > now + tolerance:
        raise WebhookVerificationError(
            f"{name} {timestamp} is more than {tolerance:g} s in the future"
        )


def standard_webhook_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional).

    Raises:
        WebhookVerificationError: The secret is not valid base64, or decodes to nothing.
    """
    encoded = secret.strip().removeprefix(_SECRET_PREFIX)
    try:
        # validate=True: the reference library silently drops stray characters,
        # which turns a mangled secret into a different key and every delivery
        # into a puzzling signature mismatch.
        key = base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII secret
        key = b""
    if not key:
        raise WebhookVerificationError(
            "the webhook secret is not valid: expected 'whsec_' followed by base64"
        )
    return key


def _standard_webhook_digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _ed25519_keys(jwks: Mapping[str, Any]) -> list[bytes]:
    """The raw 32-byte Ed25519 public keys of a JWKS; other and malformed keys are skipped."""
    entries = jwks.get("keys")
    keys: list[bytes] = []
    if isinstance(entries, list | tuple):
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                continue
            x = entry.get("x")
            if not isinstance(x, str):
                continue
            try:
                # JWK uses unpadded base64url (RFC 7515 §2); put the padding back.
                raw = base64.b64decode(x + "=" * (-len(x) % 4), altchars=b"-_", validate=True)
            except ValueError:
                continue
            if len(raw) == _ED25519_KEY_BYTES:
                keys.append(raw)
    if not keys:
        raise WebhookVerificationError("the JWKS holds no usable Ed25519 (OKP) key")
    return keys


# -- secrets in URLs, out of the log ------------------------------------------------


def url_secrets(url: str | None) -> tuple[str, ...]:
    """What in a configured URL may be a credential: its password and its query values.

    >>> url_secrets("https://hooks:s3cret@example.com/in?token=abc123&v=2")
    ('s3cret', 'abc123', '2')
    """
    if not url:
        return ()
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found.extend(value for _, value in parse_qsl(parts.query) if value)
    return tuple(found)


@contextmanager
def hidden_in_logs(*secrets: str | None, urls: Iterable[str | None] = ()) -> Iterator[None]:
    """While in the block, httpx's log shows ``***`` for ``secrets``.

    Also masked: the credentials in ``urls`` (a password, query values), and, always,
    the callback tokens imagegen puts in URLs (``imagegen_token=...``). Each secret
    is masked as written and URL-encoded (once and twice: a URL inside a query
    parameter). Secrets shorter than four characters are left alone. httpx logs
    each request's URL at INFO, so a request whose URL carries a secret runs
    inside this block (:meth:`HTTPProvider.request` does it for its key and its
    ``hide=``). Entering it installs the filter (see :func:`install_log_redaction`).

    .. versionadded:: 0.1
    """
    install_log_redaction()
    spellings = {form for secret in secrets if secret for form in _spellings(secret)}
    spellings |= {form for url in urls for s in url_secrets(url) for form in _spellings(s)}
    _hidden.update(spellings)
    try:
        yield
    finally:
        _hidden.subtract(spellings)
        for form in spellings:
            if _hidden[form] <= 0:
                del _hidden[form]


def install_log_redaction() -> None:
    """Mask imagegen's secrets in the records of httpx's and uvicorn's access loggers.

    A filter on the ``httpx`` logger (it logs each request's URL at INFO) and on
    ``uvicorn.access`` (it logs the URL each webhook was posted to). It changes only
    imagegen's own secrets (callback tokens, and the secrets of imagegen's requests
    while they run); other records pass untouched. Adding it again changes nothing.

    .. versionadded:: 0.1
    """
    for name in _REDACTED_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)  # a no-op when it is there


def _spellings(secret: str) -> set[str]:
    """``secret`` as it may appear in a logged URL: raw, decoded, encoded once and twice."""
    forms: set[str] = set()
    for text in {secret, unquote(secret)}:
        once = quote(text, safe="")
        forms |= {text, once, quote(once, safe=""), quote_plus(text)}
    return {form for form in forms if len(form) >= _MIN_SECRET}


def _redact(text: str) -> str:
    text = _CALLBACK_TOKEN.sub(r"\1***", text)
    for secret in sorted(_hidden, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _redact_arg(arg: object) -> object:
    if arg is None or isinstance(arg, int | float):
        return arg  # numbers keep their type (a %d in the message needs it)
    text = str(arg)
    clean = _redact(text)
    return arg if clean == text else clean


class _RedactSecrets(logging.Filter):
    """Masks imagegen's secrets in a record's message and arguments, keeping their shape."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _redact_arg(arg) for key, arg in record.args.items()}
        return True


_FILTER = _RedactSecrets()
