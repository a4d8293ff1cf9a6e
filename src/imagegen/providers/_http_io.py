"""What goes over the wire for an :class:`HTTPProvider`: request bodies, answers read
within a size cap (chunk by chunk, for vendors that stream), and noticing when a create
may have reached the vendor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs
import httpx

from .._errors import ProviderUnavailable
from ._context import ProviderContext

__all__ = ["CreateSending", "Form", "FormFile", "body_arguments", "read_answer"]

#: Of an error answer (status >= 400) only this much is read: enough for any error body.
ERROR_BODY_BYTES = 64 * 1024


@attrs.frozen
class FormFile:
    """One file in a multipart body (see :meth:`HTTPProvider.request`'s ``form=``).

    Args:
        data: The file's bytes (never shown in repr).
        filename: The part's file name; vendors often check its extension.
        content_type: The part's Content-Type.
    """

    data: bytes = attrs.field(repr=False)
    filename: str = "file"
    content_type: str = "application/octet-stream"


#: A multipart body: fields (str) and files, by name; a sequence repeats a name.
Form = Mapping[str, str | FormFile] | Sequence[tuple[str, str | FormFile]]


class CreateSending:
    """Tells a context when its create may have reached the vendor.

    httpcore reports each step of a request through the ``trace`` extension; from
    the first byte sent on, the create may exist at the vendor. A transport that
    reports nothing (a mock, a custom one) leaves only the outcome to go by: any
    end but a refused connection counts as sent.
    """

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._connecting = False  # reported steps so far were all about connecting

    async def trace(self, event: str, _info: Mapping[str, Any]) -> None:
        if ".send_request" in event:
            self.answered()
        elif event.startswith("connection."):
            self._connecting = True

    def answered(self) -> None:
        self._ctx._note_create_sent()  # noqa: SLF001 - the flag is this machinery's to set

    def ended(self, exc: BaseException) -> None:
        """The request failed or was cut off: sent, unless it provably never left."""
        if not (self._connecting or isinstance(exc, httpx.PoolTimeout)):
            self.answered()


def body_arguments(
    json: Any, form: Form | None, content: bytes | None, content_type: str | None
) -> dict[str, Any]:
    """httpx's keyword for the one body given (see :meth:`HTTPProvider.request`)."""
    given = [n for n, v in (("json", json), ("form", form), ("content", content)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"request() takes one body, not {' and '.join(given)}")
    if content_type is not None and content is None:
        raise TypeError("request(content_type=...) goes with content=")
    if content is not None:
        return {"content": content}
    if form is None:
        return {"json": json}
    items = form.items() if isinstance(form, Mapping) else form
    # Fields go as parts without a file name, so even a form without files is sent as
    # multipart/form-data (httpx would send fields alone url-encoded).
    parts = [
        (name, (value.filename, value.data, value.content_type))
        if isinstance(value, FormFile)
        else (name, (None, value))
        for name, value in items
    ]
    if not parts:
        raise TypeError("request(form=...) needs at least one field or file")
    return {"files": parts}


async def read_answer(
    http: httpx.AsyncClient,
    outgoing: httpx.Request,
    *,
    limit: int,
    provider: str,
    on_chunk: Callable[[bytes], Awaitable[None]] | None = None,
) -> httpx.Response:
    """Send ``outgoing`` and read its answer, at most ``limit`` bytes of it.

    ``on_chunk`` sees each piece of a successful answer as it arrives (a vendor's
    stream of events), before the next is read.

    Raises:
        ProviderUnavailable: A successful answer longer than ``limit`` (not retryable:
            asking again brings the same answer).
    """
    response = await http.send(outgoing, stream=True)
    status = response.status_code
    if status >= 400:
        limit, on_chunk = ERROR_BODY_BYTES, None
    chunks: list[bytes] = []
    size = 0
    try:
        declared = response.headers.get("content-length", "")
        if status < 400 and declared.isdigit() and int(declared) > limit:
            raise _too_long(provider, status, limit)
        # Past the limit the read is cancelled rather than left: the cancellation
        # ends each of httpx's nested stream generators at the network read, where
        # a break would leave them half-read (trio warns about every one).
        stop = False
        with anyio.CancelScope() as reading:
            async for chunk in response.aiter_bytes():
                if stop:
                    break  # a stream that never waits for the network
                chunks.append(chunk[: max(0, limit - size)])
                size += len(chunk)
                # An error answer is cut at the limit; any other must not pass it.
                stop = size > limit or (status >= 400 and size >= limit)
                if stop:
                    reading.cancel()
                elif on_chunk is not None:
                    await on_chunk(chunk)
        if size > limit and status < 400:
            raise _too_long(provider, status, limit)
    finally:
        await response.aclose()
    # The body is decoded already: the new answer must not claim an encoding.
    kept = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length")
    ]
    return httpx.Response(
        status,
        headers=kept,
        content=b"".join(chunks),
        request=outgoing,
        extensions=response.extensions,
    )


def _too_long(provider: str, status: int, limit: int) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"the answer is longer than {limit} bytes (max_response_bytes); not read further",
        provider=provider,
        status=status,
        retryable=False,
    )
