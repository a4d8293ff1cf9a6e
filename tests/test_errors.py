"""The error tree: retryability, structured fields, dict round-trips and reprs."""

from __future__ import annotations

import json
import pickle

import pytest

import imagegen
from imagegen import (
    AllProvidersFailed,
    Attempt,
    CircuitOpen,
    ContentRejected,
    GenerationCancelled,
    GenerationLost,
    ImageGenError,
    InvalidConfig,
    InvalidRequest,
    JobCancelled,
    JobLost,
    JobTimeout,
    NotRunning,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    SpendingCapReached,
    StorageError,
    UnknownJob,
    UnknownProvider,
    WebhookVerificationError,
    _errors,
)
from imagegen._errors import with_fields
from imagegen._models import error_from_dict

PUBLIC_ERRORS = [getattr(_errors, name) for name in _errors.__all__]
PROVIDER_ERRORS = [
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderRateLimited,
    ProviderAuthError,
    ProviderQuotaExceeded,
    ContentRejected,
]

SAMPLES: list[ImageGenError] = [
    ImageGenError("something broke"),
    InvalidRequest("width must be a multiple of 8 (got 100)", field="width"),
    InvalidConfig("timeout must be positive", field="timeout"),
    ProviderError("I'm a teapot", provider="a", status=418),
    ProviderError("forced", provider="a", status=500, retryable=False),
    ProviderTimeout("no answer in 30s", provider="replicate"),
    ProviderUnavailable("bad gateway", provider="fal", status=502, retry_after=1.5),
    ProviderRateLimited("slow down", provider="fal", status=429, retry_after=2.0),
    ProviderAuthError("key refused", provider="openai", status=401),
    ProviderQuotaExceeded("out of credit", provider="openai", status=402),
    ContentRejected("prompt refused by safety system", provider="replicate", status=400),
    CircuitOpen("every breaker is open", generation_id="gen-1"),
    AllProvidersFailed("every provider failed", generation_id="gen-2"),
    StorageError("bucket unreachable"),
    SpendingCapReached(
        "openai has spent $5 today (UTC), its cap is $5", provider="openai", spent=5.0, cap=5.0
    ),
    WebhookVerificationError("bad signature"),
    GenerationCancelled("the caller cancelled the generation"),
    JobCancelled("the generator was closed"),
    JobLost("the job's process stopped"),
    GenerationLost("the generation's process stopped"),
    JobTimeout("job j did not end within 1s"),
    UnknownJob("no job has the id 'j'"),
    UnknownProvider("no provider is named 'x'", field="name"),
    NotRunning("use async with", field="submit"),
]


def ident(value: object) -> str:
    return value.__name__ if isinstance(value, type) else type(value).__name__


class TestHierarchy:
    @pytest.mark.parametrize("cls", PUBLIC_ERRORS, ids=ident)
    def test_every_error_is_an_imagegen_error_exported_at_top_level(self, cls: type) -> None:
        """Every public error subclasses ImageGenError and is importable from ``imagegen``."""
        assert issubclass(cls, ImageGenError)
        assert getattr(imagegen, cls.__name__) is cls

    @pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=ident)
    def test_provider_errors_share_a_base(self, cls: type) -> None:
        """Every provider failure is a ProviderError."""
        assert issubclass(cls, ProviderError)

    @pytest.mark.parametrize("cls", [InvalidRequest, InvalidConfig], ids=ident)
    def test_validation_errors_are_value_errors(self, cls: type) -> None:
        """InvalidRequest and InvalidConfig are also ValueError."""
        assert issubclass(cls, ValueError)

    @pytest.mark.parametrize("error", SAMPLES, ids=ident)
    def test_kind_is_the_class_name(self, error: ImageGenError) -> None:
        """``kind`` is the class name, and to_dict() carries it with the message."""
        assert error.kind == type(error).__name__
        assert error.to_dict()["kind"] == error.kind
        assert error.to_dict()["message"] == str(error)


class TestRetryable:
    @pytest.mark.parametrize(
        ("cls", "expected"),
        [
            (ProviderTimeout, True),
            (ProviderUnavailable, True),
            (ProviderRateLimited, True),
            (ProviderAuthError, False),
            (ProviderQuotaExceeded, False),
            (ContentRejected, False),
        ],
        ids=ident,
    )
    @pytest.mark.parametrize("status", [None, 400, 503])
    def test_subclass_defaults(self, cls: type[ProviderError], expected: bool, status: int) -> None:
        """Each subclass decides its own retryability, whatever the status."""
        assert cls("x", provider="p", status=status).retryable is expected

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            (500, True),
            (502, True),
            (503, True),
            (504, True),
            (408, True),
            (429, True),
            (400, False),
            (401, False),
            (404, False),
            (422, False),
            (None, False),
        ],
    )
    def test_plain_provider_error_decides_from_status(
        self, status: int | None, expected: bool
    ) -> None:
        """A plain ProviderError is retryable for 408, 429 and 5xx only."""
        assert ProviderError("x", status=status).retryable is expected

    @pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=ident)
    @pytest.mark.parametrize("retryable", [True, False])
    def test_explicit_override(self, cls: type[ProviderError], retryable: bool) -> None:
        """An explicit ``retryable=`` wins over the class default and the status."""
        status = 400 if retryable else 503
        assert cls("x", status=status, retryable=retryable).retryable is retryable


class TestFields:
    def test_provider_error_keeps_fields(self) -> None:
        """provider, status, retry_after and the message are kept as given."""
        error = ProviderRateLimited("slow down", provider="fal", status=429, retry_after=2.5)
        assert (error.provider, error.status, error.retry_after) == ("fal", 429, 2.5)
        assert str(error) == "slow down"
        assert error.to_dict() == {
            "kind": "ProviderRateLimited",
            "message": "slow down",
            "provider": "fal",
            "status": 429,
            "retryable": True,
            "retry_after": 2.5,
        }

    def test_provider_error_field_defaults(self) -> None:
        """Without keywords a provider error has no provider, status or retry_after."""
        error = ProviderError("x")
        assert (error.provider, error.status, error.retry_after) == (None, None, None)

    @pytest.mark.parametrize("cls", [InvalidRequest, InvalidConfig], ids=ident)
    def test_field_is_kept(self, cls: type[InvalidRequest]) -> None:
        """InvalidRequest and InvalidConfig keep ``field`` and put it in to_dict()."""
        error = cls("width must be an integer", field="width")
        assert error.field == "width"
        assert error.to_dict() == {
            "kind": cls.__name__,
            "message": "width must be an integer",
            "field": "width",
        }

    @pytest.mark.parametrize("cls", [InvalidRequest, InvalidConfig], ids=ident)
    def test_field_is_required(self, cls: type[InvalidRequest]) -> None:
        """``field`` is a required keyword."""
        with pytest.raises(TypeError):
            cls("no field")  # type: ignore[call-arg]

    @pytest.mark.parametrize("cls", [AllProvidersFailed, CircuitOpen], ids=ident)
    def test_attempts_and_generation_id(self, cls: type[AllProvidersFailed]) -> None:
        """Attempts are kept as a tuple with the generation id, and serialised in to_dict()."""
        attempts = [
            Attempt(provider="a", outcome="error", error=ProviderTimeout("slow"), tries=3),
            Attempt(provider="b", outcome="skipped"),
        ]
        error = cls("failed", attempts=attempts, generation_id="gen-7")
        assert error.attempts == tuple(attempts)
        assert error.generation_id == "gen-7"
        data = error.to_dict()
        assert data["generation_id"] == "gen-7"
        assert data["attempts"] == [a.to_dict() for a in attempts]

    def test_attempts_default_empty(self) -> None:
        """Without attempts the tuple is empty and the generation id None."""
        error = AllProvidersFailed("failed")
        assert (error.attempts, error.generation_id) == ((), None)


class TestRoundTrip:
    def test_samples_cover_every_public_error(self) -> None:
        """The round-trip samples include one instance of every public error class."""
        assert {type(e) for e in SAMPLES} == set(PUBLIC_ERRORS)

    @pytest.mark.parametrize("error", SAMPLES, ids=ident)
    def test_error_from_dict_round_trip(self, error: ImageGenError) -> None:
        """error_from_dict(to_dict()) through JSON gives the same class, message and fields."""
        back = error_from_dict(json.loads(json.dumps(error.to_dict())))
        assert type(back) is type(error)
        assert str(back) == str(error)
        assert back.to_dict() == error.to_dict()
        for name in ("provider", "status", "retryable", "retry_after", "field", "generation_id"):
            assert getattr(back, name, None) == getattr(error, name, None), name

    @pytest.mark.parametrize("error", SAMPLES, ids=ident)
    def test_pickle_round_trip(self, error: ImageGenError) -> None:
        """Every error pickles with its class, message and fields (for process pools, queues)."""
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert str(back) == str(error)
        assert back.to_dict() == error.to_dict()
        assert vars(back) == vars(error)

    @pytest.mark.parametrize(
        "data",
        [
            {"kind": "SomethingNew", "message": "from a newer version"},
            {"kind": "ValueError", "message": "not ours"},
            {"kind": "_AttemptsError", "message": "private"},
            {"message": "no kind"},
        ],
        ids=["new", "builtin", "private", "missing"],
    )
    def test_unknown_kind_becomes_root(self, data: dict[str, str]) -> None:
        """An unknown or missing kind comes back as a plain ImageGenError with the message."""
        back = error_from_dict(data)
        assert type(back) is ImageGenError
        assert str(back) == data["message"]

    @pytest.mark.parametrize("cls", [imagegen.AllProvidersFailed, imagegen.CircuitOpen])
    def test_attempts_survive_the_round_trip(self, cls: type[imagegen.AllProvidersFailed]) -> None:
        """Stored failures come back with their attempts, errors included."""
        attempts = [
            imagegen.Attempt(
                provider="p",
                outcome="error",
                error=imagegen.ProviderTimeout("slow", provider="p"),
                elapsed=1.5,
                tries=2,
            ),
            imagegen.Attempt(provider="q", outcome="skipped"),
        ]
        error = cls("x", attempts=attempts, generation_id="g")
        back = error_from_dict(json.loads(json.dumps(error.to_dict())))
        assert isinstance(back, cls)
        assert back.attempts[1] == attempts[1]
        assert back.attempts[0].tries == 2
        assert isinstance(back.attempts[0].error, imagegen.ProviderTimeout)

    def test_missing_message_is_empty(self) -> None:
        """A dict without a message gives an error with an empty message."""
        back = error_from_dict({"kind": "StorageError"})
        assert type(back) is StorageError
        assert str(back) == ""


class TestRepr:
    @pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=ident)
    def test_provider_error_repr_shows_fields(self, cls: type[ProviderError]) -> None:
        """The repr names the class, the message and every structured field."""
        error = cls("boom", provider="fal", status=503, retry_after=1.5, retryable=True)
        more = ", reason=None" if cls is ContentRejected else ""
        assert repr(error) == (
            f"{cls.__name__}('boom', provider='fal', status=503, retryable=True, "
            f"retry_after=1.5{more})"
        )


class TestWithFields:
    def test_makes_a_new_error_and_leaves_the_old_one_alone(self) -> None:
        """with_fields builds a new error of the same class; the original keeps its values."""
        original = ProviderUnavailable("bad gateway", provider=None, status=502)
        changed = with_fields(original, provider="fal", retryable=False)
        assert type(changed) is ProviderUnavailable
        assert (str(changed), changed.provider, changed.retryable) == ("bad gateway", "fal", False)
        assert (original.provider, original.retryable) == (None, True)
        assert changed.__cause__ is original

    def test_keeps_the_first_cause(self) -> None:
        """A second change keeps pointing at what really went wrong."""
        root = ProviderTimeout("slow", provider="a")
        twice = with_fields(with_fields(root, retryable=False), provider="b")
        assert twice.__cause__ is root


class TestRunTimeErrors:
    @pytest.mark.parametrize(
        ("cls", "base", "field"),
        [
            (UnknownJob, InvalidRequest, "job_id"),
            (UnknownProvider, InvalidConfig, "provider"),
            (NotRunning, InvalidConfig, "generator"),
        ],
        ids=ident,
    )
    def test_specific_classes_keep_their_general_base(
        self, cls: type[InvalidRequest | InvalidConfig], base: type, field: str
    ) -> None:
        """Code catching the general class still catches the specific one, field preset."""
        error = cls("nope")
        assert isinstance(error, base)
        assert error.field == field

    def test_job_timeout_is_a_timeout_error(self) -> None:
        """wait()'s timeout is caught by `except TimeoutError` as well."""
        assert issubclass(JobTimeout, TimeoutError)


class TestContentRejectedReason:
    def test_round_trips_with_the_reason(self) -> None:
        """JSON, pickling and with_fields keep the vendor's reason."""
        error = ContentRejected("refused", provider="openai", status=400, reason="sexual")
        assert error.to_dict()["reason"] == "sexual"
        back = error_from_dict(json.loads(json.dumps(error.to_dict())))
        assert isinstance(back, ContentRejected)
        assert back.reason == "sexual"
        assert pickle.loads(pickle.dumps(error)).reason == "sexual"
        assert with_fields(error, provider="b").reason == "sexual"

    def test_none_when_not_given_or_not_text(self) -> None:
        assert ContentRejected("refused").reason is None
        stored = {"kind": "ContentRejected", "message": "m", "reason": {"not": "text"}}
        back = error_from_dict(stored)
        assert isinstance(back, ContentRejected)
        assert back.reason is None
