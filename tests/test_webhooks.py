"""Webhook verification: Replicate's Standard Webhooks HMAC and fal's Ed25519 over a JWKS.

The fixed vectors are the vendors' documented test vectors; the
bodies are checked against the documented sha256 at import, so a transcription slip
fails loudly instead of producing a vector that tests nothing.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from imagegen import InvalidConfig, WebhookVerificationError
from imagegen._webhooks import (
    DEFAULT_TOLERANCE,
    sign_standard_webhook,
    verify_fal_webhook,
    verify_standard_webhook,
)

# --- Replicate / Standard Webhooks vectors -------------------------------------------

UPSTREAM_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
UPSTREAM_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
UPSTREAM_TIMESTAMP = 1614265330
UPSTREAM_BODY = b'{"test": 2432232314}'
UPSTREAM_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OWN_SECRET = "whsec_No+iZL/VrSq7QMlMxlzKipmkpSFqaI2VbNVyUrfAX8M="
OWN_ID = "msg_2zXWq1bTnK8fYc4m7Ld9aPeRuVs"
OWN_TIMESTAMP = 1767225600
OWN_BODY = (
    b'{"id":"q7x3k9m2ydrj00cmz8ab1c2d3e","model":"black-forest-labs/flux-schnell",'
    b'"version":"hidden","input":{"prompt":"a red bicycle leaning on a brick wall",'
    b'"num_outputs":1,"output_format":"webp"},"logs":"",'
    b'"output":["https://replicate.delivery/xezq/abc123/out-0.webp"],"data_removed":false,'
    b'"error":null,"status":"succeeded","created_at":"2026-01-01T00:00:00.000Z",'
    b'"started_at":"2026-01-01T00:00:00.120Z","completed_at":"2026-01-01T00:00:00.910Z",'
    b'"metrics":{"predict_time":0.79,"total_time":0.91},'
    b'"urls":{"get":"https://api.replicate.com/v1/predictions/q7x3k9m2ydrj00cmz8ab1c2d3e",'
    b'"cancel":"https://api.replicate.com/v1/predictions/q7x3k9m2ydrj00cmz8ab1c2d3e/cancel",'
    b'"web":"https://replicate.com/p/q7x3k9m2ydrj00cmz8ab1c2d3e"}}'
)
OWN_BODY_SHA256 = "f66af3030c0eede9f09354e09fadf9fae688d988c4136ac476b2d6bd95b3de8a"
OWN_SIGNATURE = "v1,5azndcQfy8AOaZcPUv7GyCa5cw0JAKyC3e0lR/ywObI="
ROTATION_SIGNATURE = (
    "v1,fXj+CxAXREF+Azt1nEO/WnhuerTYQx/o5kNtLZcSLkM= "
    "v1,5azndcQfy8AOaZcPUv7GyCa5cw0JAKyC3e0lR/ywObI="
)
# A well-formed secret that is not OWN_SECRET: the key is sha256(b"some other secret").
WRONG_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"some other secret").digest()).decode()

# --- fal vectors -------------------------------------------------------------------------

FAL_SEED = bytes.fromhex("3ac61c05474f8d296ac957b07ca21b02d07dfef4b94a02b405bfdfa9202dbb8a")
FAL_JWKS: dict[str, Any] = {
    "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "DTrDdcJOkuW54UHhpg3vz3Va27SIxm4EbTfjBHTRZ98"}]
}
FAL_REQUEST_ID = "6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b"
FAL_USER_ID = "user_test_42"
FAL_TIMESTAMP = 1767225600
FAL_BODY = (
    b'{"request_id":"6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b",'
    b'"gateway_request_id":"6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b","status":"OK",'
    b'"payload":{"images":[{"url":"https://v3.fal.media/files/tiger/Xy12ab34.jpeg",'
    b'"width":1024,"height":768,"content_type":"image/jpeg"}],"timings":{"inference":0.41},'
    b'"seed":1234567,"has_nsfw_concepts":[false],'
    b'"prompt":"a red bicycle leaning on a brick wall"}}'
)
FAL_BODY_SHA256 = "3abd79068c0ed3e45ffc0813aaa3e4e7581f824eed6664da1a2bd273bbd24d59"
FAL_SIGNATURE = (
    "21a16a19be893fa01f426f67e2a4d5bd02ae028bf2923f2a92494f9a87787ffe"
    "2894228a90aae9a30d686206a549dfc2250673f9d8418568a77e347547f84004"
)
FAL_MISSING_CRYPTOGRAPHY = (
    "fal webhook verification needs the 'cryptography' package: "
    "pip install 'imagegen-failover[fal-webhooks]'"
)

# Guard the byte-for-byte copies before any test uses them.
assert len(OWN_BODY) == 723
assert hashlib.sha256(OWN_BODY).hexdigest() == OWN_BODY_SHA256
assert hashlib.sha256(FAL_BODY).hexdigest() == FAL_BODY_SHA256


def own_headers(
    signature: str = OWN_SIGNATURE, timestamp: str = str(OWN_TIMESTAMP)
) -> dict[str, str]:
    """The own vector's headers, as a plain dict with lower-case names."""
    return {
        "webhook-id": OWN_ID,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }


def verify_own(headers: Mapping[str, str], body: bytes = OWN_BODY, **kwargs: Any) -> str:
    """verify_standard_webhook with the own vector's secret and a clock frozen at its time."""
    kwargs.setdefault("now", float(OWN_TIMESTAMP))
    return verify_standard_webhook(OWN_SECRET, headers, body, **kwargs)


def fal_headers(
    signature: str = FAL_SIGNATURE, timestamp: str = str(FAL_TIMESTAMP)
) -> dict[str, str]:
    """The fal vector's headers, spelt as fal sends them."""
    return {
        "X-Fal-Webhook-Request-Id": FAL_REQUEST_ID,
        "X-Fal-Webhook-User-Id": FAL_USER_ID,
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": signature,
    }


def verify_fal(
    headers: Mapping[str, str],
    body: bytes = FAL_BODY,
    jwks: Mapping[str, Any] = FAL_JWKS,
    **kwargs: Any,
) -> str:
    """verify_fal_webhook with the stub JWKS and a clock frozen at the vector's time."""
    kwargs.setdefault("now", float(FAL_TIMESTAMP))
    return verify_fal_webhook(headers, body, jwks=jwks, **kwargs)


def jwk_for(private: Ed25519PrivateKey) -> dict[str, str]:
    """The OKP JWK (unpadded base64url ``x``) of a private key's public half."""
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).decode().rstrip("=")}


@pytest.fixture
def no_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import cryptography...`` fail, as on an install without the extra."""
    # Already-imported submodules are served straight from sys.modules, so blocking
    # only the top-level package would not be enough.
    for name in [n for n in sys.modules if n.startswith("cryptography.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)


class TestStandardVectors:
    """The documented Replicate vectors sign and verify exactly as published."""

    def test_own_body_is_the_documented_bytes(self) -> None:
        assert len(OWN_BODY) == 723
        assert hashlib.sha256(OWN_BODY).hexdigest() == OWN_BODY_SHA256
        assert not OWN_BODY.endswith(b"\n")

    def test_upstream_vector_signs(self) -> None:
        signature = sign_standard_webhook(
            UPSTREAM_SECRET, UPSTREAM_ID, UPSTREAM_TIMESTAMP, UPSTREAM_BODY
        )
        assert signature == UPSTREAM_SIGNATURE

    def test_upstream_vector_verifies(self) -> None:
        headers = {
            "webhook-id": UPSTREAM_ID,
            "webhook-timestamp": str(UPSTREAM_TIMESTAMP),
            "webhook-signature": UPSTREAM_SIGNATURE,
        }
        msg_id = verify_standard_webhook(
            UPSTREAM_SECRET, headers, UPSTREAM_BODY, now=float(UPSTREAM_TIMESTAMP)
        )
        assert msg_id == UPSTREAM_ID

    def test_own_vector_signs(self) -> None:
        assert sign_standard_webhook(OWN_SECRET, OWN_ID, OWN_TIMESTAMP, OWN_BODY) == OWN_SIGNATURE

    def test_own_vector_verifies_and_returns_the_id(self) -> None:
        assert verify_own(own_headers()) == OWN_ID

    def test_own_secret_is_the_documented_key(self) -> None:
        key = hashlib.sha256(b"imagegen test secret v1").digest()
        assert "whsec_" + base64.b64encode(key).decode() == OWN_SECRET

    def test_rotation_header_passes(self) -> None:
        assert verify_own(own_headers(ROTATION_SIGNATURE)) == OWN_ID

    def test_rotation_header_in_either_order_passes(self) -> None:
        reversed_entries = " ".join(reversed(ROTATION_SIGNATURE.split()))
        assert verify_own(own_headers(reversed_entries)) == OWN_ID

    def test_body_with_failed_instead_of_succeeded_fails(self) -> None:
        tampered = OWN_BODY.replace(b'"succeeded"', b'"failed"')
        assert tampered != OWN_BODY
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(), tampered)

    def test_wrong_secret_fails(self) -> None:
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_standard_webhook(WRONG_SECRET, own_headers(), OWN_BODY, now=OWN_TIMESTAMP)

    def test_secret_without_prefix_is_decoded_as_base64(self) -> None:
        bare = OWN_SECRET.removeprefix("whsec_")
        assert verify_standard_webhook(bare, own_headers(), OWN_BODY, now=OWN_TIMESTAMP) == OWN_ID

    def test_other_id_fails(self) -> None:
        headers = own_headers() | {"webhook-id": OWN_ID + "x"}
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(headers)

    def test_other_timestamp_fails(self) -> None:
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(timestamp=str(OWN_TIMESTAMP + 1)))


class TestStandardHeaders:
    """Headers are found case-insensitively in any mapping and must all be present."""

    @pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_missing_header_is_named(self, name: str) -> None:
        headers = own_headers()
        del headers[name]
        with pytest.raises(WebhookVerificationError, match=f"missing {name} header"):
            verify_own(headers)

    @pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    @pytest.mark.parametrize("blank", ["", "   "])
    def test_blank_header_counts_as_missing(self, name: str, blank: str) -> None:
        headers = own_headers() | {name: blank}
        with pytest.raises(WebhookVerificationError, match=f"missing {name} header"):
            verify_own(headers)

    def test_mixed_case_names_in_a_plain_dict(self) -> None:
        headers = {
            "Webhook-Id": OWN_ID,
            "WEBHOOK-TIMESTAMP": str(OWN_TIMESTAMP),
            "webhook-Signature": OWN_SIGNATURE,
        }
        assert verify_own(headers) == OWN_ID

    def test_httpx_headers(self) -> None:
        headers = httpx.Headers(
            {
                "Webhook-Id": OWN_ID,
                "Webhook-Timestamp": str(OWN_TIMESTAMP),
                "Webhook-Signature": OWN_SIGNATURE,
                "Content-Type": "application/json",
            }
        )
        assert verify_own(headers) == OWN_ID

    def test_surrounding_whitespace_is_ignored(self) -> None:
        headers = {
            "webhook-id": f" {OWN_ID} ",
            "webhook-timestamp": f"{OWN_TIMESTAMP}\t",
            "webhook-signature": f"  {OWN_SIGNATURE}  ",
        }
        assert verify_own(headers) == OWN_ID

    def test_same_header_twice_with_different_values_is_refused(self) -> None:
        headers = own_headers() | {"Webhook-Id": "msg_someone_else"}
        with pytest.raises(WebhookVerificationError, match="webhook-id header appears twice"):
            verify_own(headers)

    def test_same_header_twice_with_the_same_value_is_fine(self) -> None:
        headers = own_headers() | {"Webhook-Id": OWN_ID}
        assert verify_own(headers) == OWN_ID

    def test_non_ascii_lookalike_name_is_not_matched(self) -> None:
        headers = own_headers()
        del headers["webhook-id"]
        # U+212A KELVIN SIGN lower-cases to an ASCII "k".
        headers["webhoo\u212a-id"] = OWN_ID
        with pytest.raises(WebhookVerificationError, match="missing webhook-id header"):
            verify_own(headers)

    def test_unrelated_headers_are_ignored(self) -> None:
        headers = own_headers() | {"content-type": "application/json", "user-agent": "x"}
        assert verify_own(headers) == OWN_ID


class TestStandardTimestamp:
    """The timestamp must be whole Unix seconds within the tolerance, bounds included."""

    @pytest.mark.parametrize(
        "timestamp",
        [
            "1767225600.5",
            "1.7672256e9",
            "abc",
            "-1767225600",
            "+1767225600",
            "0x69557f00",
            "1_767_225_600",
            "1767225600 1767225600",
            "\uff11\uff17\uff16\uff17\uff12\uff12\uff15\uff16\uff10\uff10",  # full-width digits
            "1" * 21,
        ],
    )
    def test_non_integer_timestamp_is_refused(self, timestamp: str) -> None:
        with pytest.raises(WebhookVerificationError, match="not a whole number of Unix seconds"):
            verify_own(own_headers(timestamp=timestamp))

    def test_exactly_tolerance_old_passes(self) -> None:
        assert verify_own(own_headers(), now=OWN_TIMESTAMP + 300.0) == OWN_ID

    def test_one_second_past_tolerance_is_stale(self) -> None:
        with pytest.raises(WebhookVerificationError, match="older than the 300 s tolerance"):
            verify_own(own_headers(), now=OWN_TIMESTAMP + 301.0)

    def test_exactly_tolerance_ahead_passes(self) -> None:
        assert verify_own(own_headers(), now=OWN_TIMESTAMP - 300.0) == OWN_ID

    def test_one_second_beyond_tolerance_ahead_is_refused(self) -> None:
        with pytest.raises(WebhookVerificationError, match="more than 300 s in the future"):
            verify_own(own_headers(), now=OWN_TIMESTAMP - 301.0)

    def test_default_tolerance_is_five_minutes(self) -> None:
        assert DEFAULT_TOLERANCE == 300.0

    def test_custom_tolerance(self) -> None:
        assert verify_own(own_headers(), now=OWN_TIMESTAMP + 3600.0, tolerance=3600.0) == OWN_ID
        with pytest.raises(WebhookVerificationError, match="older than the 10 s tolerance"):
            verify_own(own_headers(), now=OWN_TIMESTAMP + 11.0, tolerance=10.0)

    def test_zero_tolerance_accepts_only_the_exact_second(self) -> None:
        assert verify_own(own_headers(), tolerance=0.0) == OWN_ID
        with pytest.raises(WebhookVerificationError, match="older"):
            verify_own(own_headers(), now=OWN_TIMESTAMP + 0.5, tolerance=0.0)

    def test_infinite_tolerance_turns_the_time_check_off(self) -> None:
        assert verify_own(own_headers(), now=4e9, tolerance=math.inf) == OWN_ID

    def test_stale_check_still_needs_a_valid_signature(self) -> None:
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(), OWN_BODY + b" ", tolerance=math.inf)

    @pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
    def test_non_finite_now_is_a_caller_error(self, now: float) -> None:
        with pytest.raises(InvalidConfig, match="now must be a finite") as info:
            verify_own(own_headers(), now=now)
        assert info.value.field == "now"

    @pytest.mark.parametrize("tolerance", [math.nan, -1.0])
    def test_bad_tolerance_is_a_caller_error(self, tolerance: float) -> None:
        with pytest.raises(InvalidConfig, match="tolerance must be") as info:
            verify_own(own_headers(), tolerance=tolerance)
        assert info.value.field == "tolerance"


class TestStandardSignatureHeader:
    """Only v1 entries count; malformed entries are skipped, not fatal."""

    def test_v1a_entry_is_ignored_even_with_the_right_value(self) -> None:
        value = OWN_SIGNATURE.removeprefix("v1,")
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(f"v1a,{value}"))

    def test_v1a_entry_beside_a_valid_v1_entry(self) -> None:
        assert verify_own(own_headers(f"v1a,c29tZXRoaW5nIGVsc2U= {OWN_SIGNATURE}")) == OWN_ID

    @pytest.mark.parametrize("version", ["v2", "V1", "v1 ", "", "v0"])
    def test_other_versions_are_skipped(self, version: str) -> None:
        value = OWN_SIGNATURE.removeprefix("v1,")
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(f"{version},{value}"))

    @pytest.mark.parametrize(
        "junk",
        [
            "v1",
            "v1,",
            "v1,not base64!",
            "v1,\u00e9t\u00e9",
            "5azndcQfy8AOaZcPUv7GyCa5cw0JAKyC3e0lR/ywObI=",
            "v1,5azndcQfy8AOaZcPUv7GyCa5cw0JAKyC3e0lR/ywOb",
            "v1,5azndcQfy8AOaZcPUv7GyCa5cw0JAKyC3e0lR/ywObI=,extra",
        ],
    )
    def test_malformed_entries_are_skipped(self, junk: str) -> None:
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(junk))
        assert verify_own(own_headers(f"{junk} {OWN_SIGNATURE}")) == OWN_ID

    def test_truncated_signature_fails(self) -> None:
        digest = base64.b64decode(OWN_SIGNATURE.removeprefix("v1,"))
        short = "v1," + base64.b64encode(digest[:16]).decode()
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(short))


class TestStandardSecret:
    """A malformed secret is reported as such, and no message leaks key material."""

    @pytest.mark.parametrize(
        "secret",
        ["whsec_", "", "   ", "whsec_not base64!", "whsec_\u00e9\u00e9\u00e9\u00e9", "whsec_abc"],
    )
    def test_bad_secret_is_reported(self, secret: str) -> None:
        with pytest.raises(WebhookVerificationError, match="webhook secret is not valid"):
            verify_standard_webhook(secret, own_headers(), OWN_BODY, now=OWN_TIMESTAMP)
        with pytest.raises(WebhookVerificationError, match="webhook secret is not valid"):
            sign_standard_webhook(secret, OWN_ID, OWN_TIMESTAMP, OWN_BODY)

    def test_bad_secret_message_does_not_echo_it(self) -> None:
        secret = "whsec_TOPSECRET!!"
        with pytest.raises(WebhookVerificationError) as info:
            verify_standard_webhook(secret, own_headers(), OWN_BODY, now=OWN_TIMESTAMP)
        assert "TOPSECRET" not in str(info.value)

    @pytest.mark.parametrize(
        "case",
        ["tampered", "wrong-secret", "stale", "future", "missing", "bad-timestamp", "v1a"],
    )
    def test_failure_messages_hold_no_secret_or_expected_signature(self, case: str) -> None:
        secret, headers, body, now = OWN_SECRET, own_headers(), OWN_BODY, float(OWN_TIMESTAMP)
        if case == "tampered":
            body = body.replace(b"succeeded", b"failed")
        elif case == "wrong-secret":
            secret = WRONG_SECRET
        elif case == "stale":
            now += 301
        elif case == "future":
            now -= 301
        elif case == "missing":
            del headers["webhook-signature"]
        elif case == "bad-timestamp":
            headers["webhook-timestamp"] = "soon"
        else:
            headers["webhook-signature"] = "v1a,AAAA"
        with pytest.raises(WebhookVerificationError) as info:
            verify_standard_webhook(secret, headers, body, now=now)
        message = str(info.value)
        for leak in (
            OWN_SECRET,
            OWN_SECRET.removeprefix("whsec_"),
            WRONG_SECRET.removeprefix("whsec_"),
            OWN_SIGNATURE.removeprefix("v1,"),
            sign_standard_webhook(WRONG_SECRET, OWN_ID, OWN_TIMESTAMP, OWN_BODY)[3:],
            sign_standard_webhook(OWN_SECRET, OWN_ID, OWN_TIMESTAMP, body)[3:],
        ):
            assert leak not in message
        assert message


class TestStandardProperties:
    """Signing and verifying agree for any input, and any changed byte breaks the match."""

    @given(
        key=st.binary(min_size=1, max_size=64),
        msg_id=st.text(
            alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:",
            min_size=1,
            max_size=64,
        ),
        timestamp=st.integers(min_value=0, max_value=10**12),
        skew=st.integers(min_value=-300, max_value=300),
        body=st.binary(max_size=2048),
        prefixed=st.booleans(),
    )
    def test_sign_then_verify_round_trips(
        self, key: bytes, msg_id: str, timestamp: int, skew: int, body: bytes, prefixed: bool
    ) -> None:
        secret = ("whsec_" if prefixed else "") + base64.b64encode(key).decode()
        signature = sign_standard_webhook(secret, msg_id, timestamp, body)
        assert signature.startswith("v1,")
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        assert verify_standard_webhook(secret, headers, body, now=timestamp + skew) == msg_id

    @given(
        body=st.binary(min_size=1, max_size=1024),
        data=st.data(),
        delta=st.integers(min_value=1, max_value=255),
    )
    def test_any_single_byte_change_fails(
        self, body: bytes, data: st.DataObject, delta: int
    ) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
        changed = bytearray(body)
        changed[index] = (changed[index] + delta) % 256
        signature = sign_standard_webhook(OWN_SECRET, OWN_ID, OWN_TIMESTAMP, body)
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(signature), bytes(changed))

    @given(body=st.binary(max_size=256), extra=st.binary(min_size=1, max_size=16))
    def test_appended_or_dropped_bytes_fail(self, body: bytes, extra: bytes) -> None:
        signature = sign_standard_webhook(OWN_SECRET, OWN_ID, OWN_TIMESTAMP, body + extra)
        with pytest.raises(WebhookVerificationError, match="no v1 entry"):
            verify_own(own_headers(signature), body)


class TestFalVector:
    """The documented fal Ed25519 vector verifies; changes to any signed part do not."""

    def test_fal_body_is_the_documented_bytes(self) -> None:
        assert hashlib.sha256(FAL_BODY).hexdigest() == FAL_BODY_SHA256
        assert not FAL_BODY.endswith(b"\n")

    def test_stub_jwks_is_the_seed_public_key(self) -> None:
        assert hashlib.sha256(b"imagegen fal test seed").digest() == FAL_SEED
        private = Ed25519PrivateKey.from_private_bytes(FAL_SEED)
        assert jwk_for(private) == FAL_JWKS["keys"][0]

    def test_seed_reproduces_the_documented_signature(self) -> None:
        message = f"{FAL_REQUEST_ID}\n{FAL_USER_ID}\n{FAL_TIMESTAMP}\n{FAL_BODY_SHA256}".encode()
        signature = Ed25519PrivateKey.from_private_bytes(FAL_SEED).sign(message)
        assert signature.hex() == FAL_SIGNATURE

    def test_vector_verifies_and_returns_the_request_id(self) -> None:
        assert verify_fal(fal_headers()) == FAL_REQUEST_ID

    def test_upper_case_hex_signature_passes(self) -> None:
        assert verify_fal(fal_headers(FAL_SIGNATURE.upper())) == FAL_REQUEST_ID

    def test_tampered_body_fails(self) -> None:
        tampered = FAL_BODY.replace(b'"status":"OK"', b'"status":"ERROR"')
        assert tampered != FAL_BODY
        with pytest.raises(WebhookVerificationError, match="no JWKS key verifies"):
            verify_fal(fal_headers(), tampered)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("X-Fal-Webhook-Request-Id", "6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5c"),
            ("X-Fal-Webhook-User-Id", "user_test_43"),
            ("X-Fal-Webhook-Timestamp", str(FAL_TIMESTAMP + 1)),
        ],
    )
    def test_changed_signed_header_fails(self, name: str, value: str) -> None:
        headers = fal_headers() | {name: value}
        with pytest.raises(WebhookVerificationError, match="no JWKS key verifies"):
            verify_fal(headers)

    def test_flipped_signature_bit_fails(self) -> None:
        flipped = f"{int(FAL_SIGNATURE[0], 16) ^ 1:x}" + FAL_SIGNATURE[1:]
        with pytest.raises(WebhookVerificationError, match="no JWKS key verifies"):
            verify_fal(fal_headers(flipped))

    def test_key_not_in_jwks_fails(self) -> None:
        other = {"keys": [jwk_for(Ed25519PrivateKey.generate())]}
        with pytest.raises(WebhookVerificationError, match="no JWKS key verifies"):
            verify_fal(fal_headers(), jwks=other)

    def test_any_key_of_the_jwks_may_match(self) -> None:
        rotated = {"keys": [jwk_for(Ed25519PrivateKey.generate()), *FAL_JWKS["keys"]]}
        assert verify_fal(fal_headers(), jwks=rotated) == FAL_REQUEST_ID

    def test_padded_x_is_accepted(self) -> None:
        x = FAL_JWKS["keys"][0]["x"] + "="
        jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]}
        assert verify_fal(fal_headers(), jwks=jwks) == FAL_REQUEST_ID


class TestFalHeadersAndTime:
    """fal's headers are required, matched case-insensitively and checked for shape and age."""

    @pytest.mark.parametrize(
        "name",
        [
            "X-Fal-Webhook-Request-Id",
            "X-Fal-Webhook-User-Id",
            "X-Fal-Webhook-Timestamp",
            "X-Fal-Webhook-Signature",
        ],
    )
    def test_missing_header_is_named(self, name: str) -> None:
        headers = fal_headers()
        del headers[name]
        with pytest.raises(WebhookVerificationError, match=f"missing {name} header"):
            verify_fal(headers)

    def test_lower_case_names_in_a_plain_dict(self) -> None:
        headers = {name.lower(): value for name, value in fal_headers().items()}
        assert verify_fal(headers) == FAL_REQUEST_ID

    def test_httpx_headers(self) -> None:
        assert verify_fal(httpx.Headers(fal_headers())) == FAL_REQUEST_ID

    @pytest.mark.parametrize(
        "signature",
        [
            "zz" + FAL_SIGNATURE[2:],
            FAL_SIGNATURE[:-2],
            FAL_SIGNATURE + "00",
            " ".join(FAL_SIGNATURE[i : i + 2] for i in range(0, 128, 2)),
            base64.b64encode(bytes.fromhex(FAL_SIGNATURE)).decode(),
        ],
    )
    def test_malformed_signature_is_refused(self, signature: str) -> None:
        with pytest.raises(WebhookVerificationError, match="not a 64-byte Ed25519 signature"):
            verify_fal(fal_headers(signature))

    @pytest.mark.parametrize("timestamp", ["1767225600.0", "soon", "-1", "1" * 21])
    def test_non_integer_timestamp_is_refused(self, timestamp: str) -> None:
        with pytest.raises(WebhookVerificationError, match="not a whole number of Unix seconds"):
            verify_fal(fal_headers(timestamp=timestamp))

    def test_tolerance_boundaries(self) -> None:
        assert verify_fal(fal_headers(), now=FAL_TIMESTAMP + 300.0) == FAL_REQUEST_ID
        assert verify_fal(fal_headers(), now=FAL_TIMESTAMP - 300.0) == FAL_REQUEST_ID
        with pytest.raises(WebhookVerificationError, match="older than the 300 s tolerance"):
            verify_fal(fal_headers(), now=FAL_TIMESTAMP + 301.0)
        with pytest.raises(WebhookVerificationError, match="more than 300 s in the future"):
            verify_fal(fal_headers(), now=FAL_TIMESTAMP - 301.0)

    def test_non_finite_now_is_a_caller_error(self) -> None:
        with pytest.raises(InvalidConfig, match="now must be a finite"):
            verify_fal(fal_headers(), now=math.nan)


class TestFalJwks:
    """Only well-formed OKP/Ed25519 keys are used; a JWKS without one is an error."""

    @pytest.mark.parametrize(
        "jwks",
        [
            {},
            {"keys": []},
            {"keys": "not a list"},
            {"keys": ["not a mapping"]},
            {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]},
            {"keys": [{"kty": "OKP", "crv": "X25519", "x": FAL_JWKS["keys"][0]["x"]}]},
            {"keys": [{"kty": "OKP", "crv": "Ed25519"}]},
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": 42}]},
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "not base64url!"}]},
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]},
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "\u00e9\u00e9\u00e9\u00e9"}]},
        ],
    )
    def test_no_usable_key_is_an_error(self, jwks: dict[str, Any]) -> None:
        with pytest.raises(WebhookVerificationError, match="no usable Ed25519"):
            verify_fal(fal_headers(), jwks=jwks)

    def test_unusable_keys_beside_a_good_one_are_skipped(self) -> None:
        jwks = {
            "keys": [
                {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
                {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
                "junk",
                *FAL_JWKS["keys"],
            ]
        }
        assert verify_fal(fal_headers(), jwks=jwks) == FAL_REQUEST_ID

    def test_keys_as_a_tuple(self) -> None:
        assert verify_fal(fal_headers(), jwks={"keys": tuple(FAL_JWKS["keys"])}) == FAL_REQUEST_ID


class TestFalWithoutCryptography:
    """Without the optional package, fal verification fails closed with an install hint."""

    @pytest.mark.usefixtures("no_cryptography")
    def test_missing_cryptography_is_a_verification_error(self) -> None:
        with pytest.raises(WebhookVerificationError) as info:
            verify_fal(fal_headers())
        assert str(info.value) == FAL_MISSING_CRYPTOGRAPHY
        assert isinstance(info.value.__cause__, ImportError)

    @pytest.mark.usefixtures("no_cryptography")
    def test_standard_webhooks_do_not_need_cryptography(self) -> None:
        assert verify_own(own_headers()) == OWN_ID

    def test_cryptography_is_back_after_the_fixture(self) -> None:
        assert verify_fal(fal_headers()) == FAL_REQUEST_ID
