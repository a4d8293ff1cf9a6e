"""OpenTelemetry metrics and traces, fed by the generator's events.

:class:`Telemetry` is a hook: ``ImageGenerator(hooks=[Telemetry()])``. It imports
OpenTelemetry only when it is built, so ``import imagegen`` never does, and it
needs only ``opentelemetry-api`` (the extra ``imagegen-failover[telemetry]``): which SDK,
exporters and readers to use is the application's choice. Without an SDK the
API's no-op providers make every call nearly free.

Events arrive inline in the generation's task, so each one costs a dictionary
lookup and a few ``add``/``record`` calls: nothing here waits or does I/O.

Metrics (attributes in brackets):

- ``imagegen.attempts`` counter ``{attempt}`` [provider, outcome, error.type]: one
  per provider per generation (its retries included).
- ``imagegen.attempt.duration`` histogram ``s`` [provider, outcome, error.type].
- ``imagegen.retries`` counter ``{retry}`` [provider, error.type].
- ``imagegen.billed_calls`` counter ``{call}`` [provider].
- ``imagegen.cost`` counter ``USD`` [provider]: what the attempts cost, where known
  (``imagegen.cost.unknown`` ``{attempt}`` [provider] counts those whose cost is not).
- ``imagegen.cancellations`` counter ``{cancellation}`` [provider, kind]:
  ``kind="local"`` for an attempt cancelled here (a race or hedge loser, or a
  caller that gave up), ``kind="remote"`` for remote work the provider cancelled.
- ``imagegen.generations`` counter ``{generation}`` [status, provider, is_default, error.type].
- ``imagegen.generation.duration`` histogram ``s`` [status, provider, is_default].
- ``imagegen.breaker.state`` gauge ``1`` [provider]: 0 closed, 1 half open, 2 open.
- ``imagegen.breaker.transitions`` counter ``{transition}`` [provider, state].

Spans: ``imagegen.generate`` per generation (a child of whatever span is current
where ``generate()`` is called) with an ``imagegen.attempt`` child per provider.

.. versionadded:: 0.1
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._distribution import install_hint, installed_version
from ._errors import InvalidConfig
from ._models import Event

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["BREAKER_STATES", "Telemetry"]

BREAKER_STATES: Final[Mapping[str, int]] = {"closed": 0, "half_open": 1, "open": 2}
"""What ``imagegen.breaker.state`` reports for each breaker state."""

# Seconds; image generation takes from a tenth of a second (a cache, a placeholder)
# to a minute or two, so the SDK's default buckets (made for milliseconds) would put
# nearly everything into the first two.
DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)

_MISSING = (
    f"Telemetry needs OpenTelemetry's API, which is not installed: {install_hint('telemetry')}"
)
_ATTEMPT_SPAN: Final = "imagegen.attempt"
_GENERATION_SPAN: Final = "imagegen.generate"


def _library_version() -> str:
    return installed_version() or "0"  # "0": a source tree that was never installed


class Telemetry:
    """A hook that turns the generator's events into OpenTelemetry metrics and spans.

    Example::

        gen = ImageGenerator(providers=[...], hooks=[Telemetry()])

    Spans whose end never arrives (say, the process lost an event) are kept in
    maps capped at ``max_open`` entries, oldest dropped first, so memory stays
    bounded; a dropped span is simply never exported.

    Args:
        meter_provider: Where metrics go; None means OpenTelemetry's global one.
        tracer_provider: Where spans go; None means OpenTelemetry's global one.
        max_open: Most generations, and most attempts, with a span still open.

    Raises:
        InvalidConfig: OpenTelemetry's API is not installed (field ``telemetry``),
            or ``max_open`` is not an integer >= 1.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        max_open: int = 10_000,
    ) -> None:
        try:
            # Imported here, not at module level: `import imagegen` must work, and
            # stay fast, without OpenTelemetry.
            from opentelemetry import metrics, trace  # noqa: PLC0415
        except ImportError as exc:
            raise InvalidConfig(_MISSING, field="telemetry") from exc
        if not isinstance(max_open, int) or isinstance(max_open, bool) or max_open < 1:
            raise InvalidConfig(
                f"max_open must be an integer >= 1 (got {max_open!r})", field="max_open"
            )
        self._trace = trace
        self._max_open = max_open
        lib = _library_version()
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("imagegen", lib)
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("imagegen", lib)

        self._attempts = meter.create_counter(
            "imagegen.attempts", "{attempt}", "Provider attempts, retries included, by outcome"
        )
        self._attempt_duration = meter.create_histogram(
            "imagegen.attempt.duration",
            "s",
            "Time spent on one provider in one generation, retries and backoff included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._retries = meter.create_counter(
            "imagegen.retries", "{retry}", "Retries scheduled after a retryable error"
        )
        self._billed = meter.create_counter(
            "imagegen.billed_calls", "{call}", "Calls to a paid provider that cost money"
        )
        self._cost = meter.create_counter(
            "imagegen.cost", "USD", "What provider calls cost, where the price is known"
        )
        self._cost_unknown = meter.create_counter(
            "imagegen.cost.unknown", "{attempt}", "Attempts whose cost is not known"
        )
        self._cancellations = meter.create_counter(
            "imagegen.cancellations",
            "{cancellation}",
            "Attempts cancelled here (kind=local) and remote work cancelled (kind=remote)",
        )
        self._generations = meter.create_counter(
            "imagegen.generations", "{generation}", "Finished generations, by status"
        )
        self._generation_duration = meter.create_histogram(
            "imagegen.generation.duration",
            "s",
            "Time from generate() to its answer",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._transitions = meter.create_counter(
            "imagegen.breaker.transitions",
            "{transition}",
            "Circuit-breaker state changes, by the state entered",
        )
        self._set_breaker = self._breaker_instrument(meter)
        self._breaker_states: dict[str, int] = {}

        self._generation_spans: dict[str, Span] = {}
        self._attempt_spans: dict[tuple[str, str], Span] = {}
        self._handlers: dict[str, Callable[[Event], None]] = {
            "generation_started": self._generation_started,
            "attempt_started": self._attempt_started,
            "retry_scheduled": self._retry_scheduled,
            "attempt_finished": self._attempt_finished,
            "remote_cancelled": self._remote_cancelled,
            "breaker_state_changed": self._breaker_changed,
            "generation_finished": self._generation_finished,
        }

    @staticmethod
    def _breaker_instrument(meter: Any) -> Callable[[str, int, int | None], None]:
        """A setter ``(provider, new, previous)`` for ``imagegen.breaker.state``."""
        gauge = None
        if hasattr(meter, "create_gauge"):
            # The API's base Meter warns and returns None when an implementation has
            # no synchronous gauge; that case takes the fallback below.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gauge = meter.create_gauge(
                    "imagegen.breaker.state", "1", "Breaker state: 0 closed, 1 half open, 2 open"
                )
        if gauge is not None:

            def set_gauge(provider: str, value: int, _: int | None) -> None:
                gauge.set(value, {"provider": provider})

            return set_gauge
        # An API without synchronous gauges (before 1.23): an up-down counter moved by
        # the difference reads the same once summed: the current state's number.
        counter = meter.create_up_down_counter(
            "imagegen.breaker.state", "1", "Breaker state: 0 closed, 1 half open, 2 open"
        )

        def move_counter(provider: str, value: int, previous: int | None) -> None:
            counter.add(value - (previous or 0), {"provider": provider})

        return move_counter

    def _breaker_is(self, provider: str, value: int) -> None:
        previous = self._breaker_states.get(provider)
        self._breaker_states[provider] = value
        self._set_breaker(provider, value, previous)

    def __call__(self, event: Event) -> None:
        """Record one event (sync, and never waits)."""
        handler = self._handlers.get(event.kind)
        if handler is not None:
            handler(event)

    # -- spans --------------------------------------------------------------------

    def _keep(self, spans: dict[Any, Span], key: object, span: Span) -> None:
        """Remember an open span; past ``max_open``, forget the oldest (never exported)."""
        if len(spans) >= self._max_open and key not in spans:
            del spans[next(iter(spans))]
        old = spans.pop(key, None)
        if old is not None:  # the same key opened twice: the first one is over
            old.end()
        spans[key] = span

    def _generation_started(self, event: Event) -> None:
        if event.generation_id is None:
            return
        attributes: dict[str, Any] = {"imagegen.generation.id": event.generation_id}
        data = event.data
        for key in ("width", "height", "output_format", "seed"):
            value = data.get(key)
            if isinstance(value, str | int):
                attributes[f"imagegen.request.{key}"] = value
        # No explicit context: the span joins whatever trace is current where
        # generate() was called (a web request's span, say).
        span = self._tracer.start_span(_GENERATION_SPAN, attributes=attributes)
        self._keep(self._generation_spans, event.generation_id, span)

    def _attempt_started(self, event: Event) -> None:
        gid, provider = event.generation_id, event.provider
        if gid is None or provider is None or event.data.get("try", 1) != 1:
            return
        parent = self._generation_spans.get(gid)
        # Attempts run in tasks of their own, where the generation's span is not the
        # current one: the parent is named explicitly.
        context = None if parent is None else self._trace.set_span_in_context(parent)
        span = self._tracer.start_span(
            _ATTEMPT_SPAN,
            context=context,
            attributes={"imagegen.generation.id": gid, "provider": provider},
        )
        self._keep(self._attempt_spans, (gid, provider), span)

    def _retry_scheduled(self, event: Event) -> None:
        provider = event.provider or ""
        kind = event.data.get("error")
        self._retries.add(1, {"provider": provider, "error.type": str(kind)})
        span = self._attempt_spans.get((event.generation_id or "", provider))
        if span is not None:
            span.add_event(
                "retry_scheduled",
                {
                    "try": int(event.data.get("try", 0)),
                    "delay": float(event.data.get("delay", 0.0)),
                    "error.type": str(kind),
                },
            )

    def _attempt_finished(self, event: Event) -> None:
        provider = event.provider or ""
        data = event.data
        outcome = str(data.get("outcome"))
        error = data.get("error")
        attributes = {"provider": provider, "outcome": outcome}
        if error is not None:
            attributes["error.type"] = str(error)
        self._attempts.add(1, attributes)
        self._attempt_duration.record(float(data.get("elapsed", 0.0)), attributes)
        billed = int(data.get("billed", 0))
        if billed:
            self._billed.add(billed, {"provider": provider})
        cost = data.get("cost", 0.0)
        if cost is None:
            self._cost_unknown.add(1, {"provider": provider})
        elif cost:
            self._cost.add(float(cost), {"provider": provider})
        if outcome == "cancelled":
            self._cancellations.add(1, {"provider": provider, "kind": "local"})
        elif outcome == "success" and provider not in self._breaker_states:
            # A success means the breaker is closed: report it from the first sign of
            # life rather than only after a first change.
            self._breaker_is(provider, 0)
        span = self._attempt_spans.pop((event.generation_id or "", provider), None)
        if span is None:
            return
        span.set_attributes(
            {**attributes, "tries": int(data.get("tries", 0)), "billed": billed},
        )
        if outcome == "error":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(error)))
        span.end()

    def _remote_cancelled(self, event: Event) -> None:
        provider = event.provider or ""
        self._cancellations.add(1, {"provider": provider, "kind": "remote"})
        span = self._attempt_spans.get((event.generation_id or "", provider))
        if span is not None:
            span.add_event("remote_cancelled")

    def _breaker_changed(self, event: Event) -> None:
        provider = event.provider or ""
        to = str(event.data.get("to"))
        value = BREAKER_STATES.get(to)
        if value is None:
            return
        self._breaker_is(provider, value)
        self._transitions.add(1, {"provider": provider, "state": to})

    def _generation_finished(self, event: Event) -> None:
        data = event.data
        status = str(data.get("status"))
        attributes: dict[str, Any] = {
            "status": status,
            "is_default": bool(data.get("is_default", False)),
        }
        if event.provider is not None:
            attributes["provider"] = event.provider
        error = data.get("error")
        self._generation_duration.record(float(data.get("elapsed", 0.0)), attributes)
        if error is not None:
            attributes["error.type"] = str(error)
        self._generations.add(1, attributes)
        span = self._generation_spans.pop(event.generation_id or "", None)
        if span is None:
            return
        span.set_attributes(attributes)
        if status != "succeeded":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(error)))
        span.end()

    def open_spans(self) -> int:
        """How many spans are open (generations and attempts): for health checks and tests."""
        return len(self._generation_spans) + len(self._attempt_spans)

    def __repr__(self) -> str:
        return f"Telemetry(open_spans={self.open_spans()})"
