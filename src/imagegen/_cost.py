"""What one provider call cost, in USD: known, nothing, or not known (never guessed).

A call is billed when it made an image, or remote work (a prediction, a queue job)
at a vendor that bills work whether or not it ends in an image.
A call the vendor refused with an HTTP error made nothing, and one whose create was
never sent cost nothing. A create that was sent and never answered (a timeout, a
dropped connection, a call abandoned when another provider won) is billed only by a
vendor that finishes the work whatever the client does (``Provider.bills_unanswered``);
for the others nobody can tell, so its cost is None, and so is every sum it is in.
"""

from __future__ import annotations

from ._errors import ImageGenError, ProviderError
from ._output import Output
from ._request import ImageRequest
from .providers import Provider

__all__ = ["call_cost", "call_price"]


def call_price(provider: Provider, request: ImageRequest) -> float | None:
    """USD one call of ``provider`` for ``request`` would cost; None when not known."""
    return provider.price(request) if provider.paid else 0.0


def call_cost(
    provider: Provider,
    request: ImageRequest,
    *,
    output: Output | None,
    remote_work: bool,
    create_sent: bool,
    error: ImageGenError | None = None,
) -> float | None:
    """USD one call cost (see the module docstring); None when not known."""
    if not provider.paid:
        return 0.0
    if output is not None and output.cost is not None:
        return output.cost  # what the vendor's own answer says it cost
    if output is not None:
        return provider.price(request)
    if remote_work:
        return 0.0 if provider.bills_only_outputs else provider.price(request)
    refused = isinstance(error, ProviderError) and error.status is not None
    if not create_sent or refused:
        return 0.0
    return provider.price(request) if provider.bills_unanswered else None
