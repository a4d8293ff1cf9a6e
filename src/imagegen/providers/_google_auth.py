"""Where Vertex AI calls get their OAuth access token.

Three sources: a token string (``gcloud auth print-access-token``; it lasts an hour),
a callable that returns one (sync or async, called before every request: cache in it),
or Application Default Credentials through the ``google-auth`` package (the
``imagegen-failover[google]`` extra): a service account's key file named by
``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, or the
metadata server on Google Cloud. ADC tokens are refreshed in a worker thread before
they expire, one refresh at a time, over httpx (no second HTTP stack).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx

from .._errors import InvalidConfig, ProviderAuthError, ProviderUnavailable

if TYPE_CHECKING:
    import google.auth.credentials

__all__ = ["AccessTokens", "TokenSource"]

#: A token, or what makes one when called.
TokenSource = str | Callable[[], str | Awaitable[str]]
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_TOKEN_TIMEOUT = 30.0


class AccessTokens:
    """The bearer token of each Vertex AI request, from one of the three sources.

    Args:
        source: A token, a callable returning one, or None for ADC.
        provider: The provider's name, for errors.

    Raises:
        InvalidConfig: ``source`` is None and ``google-auth`` is not installed, or it
            is neither a non-empty string nor a callable.
    """

    def __init__(self, source: TokenSource | None, provider: str) -> None:
        self.provider = provider
        if source is None:
            try:
                import google.auth  # noqa: F401, PLC0415 - only Vertex's ADC mode needs it
            except ImportError:
                raise InvalidConfig(
                    f"{provider}: Vertex AI needs access_token= or Application Default "
                    "Credentials, which need google-auth: "
                    "pip install 'imagegen-failover[google]'",
                    field="access_token",
                ) from None
        elif not callable(source) and not (isinstance(source, str) and source.strip()):
            raise InvalidConfig(
                f"{provider}: access_token must be a non-empty string or a callable",
                field="access_token",
            )
        self._source = source
        self._credentials: google.auth.credentials.Credentials | None = None
        self._lock = threading.Lock()
        self.current: str | None = source.strip() if isinstance(source, str) else None

    @property
    def kind(self) -> str:
        """``token``, ``callable`` or ``adc``: for repr and doctor."""
        if isinstance(self._source, str):
            return "token"
        return "callable" if self._source is not None else "adc"

    async def get(self) -> str:
        """A token valid now.

        Raises:
            ProviderAuthError: The source gave no token, or ADC could not find or
                refresh credentials.
            ProviderUnavailable: The token endpoint could not be reached (retryable).
        """
        if isinstance(self._source, str):
            return self._source.strip()
        if self._source is not None:
            value = self._source()
            token = await value if inspect.isawaitable(value) else value
        else:
            token = await anyio.to_thread.run_sync(self._adc_token, abandon_on_cancel=True)
        if not isinstance(token, str) or not token.strip():
            raise ProviderAuthError("the access token source gave no token", provider=self.provider)
        self.current = token.strip()
        return self.current

    def _adc_token(self) -> str:
        """ADC's token, refreshed first when it is missing or about to expire (in a
        worker thread: google-auth reads files and makes blocking requests)."""
        import google.auth  # noqa: PLC0415 - checked at construction
        import google.auth.exceptions  # noqa: PLC0415

        with self._lock:
            try:
                if self._credentials is None:
                    self._credentials, _ = google.auth.default(scopes=[SCOPE])
                if not self._credentials.valid:
                    with httpx.Client(timeout=_TOKEN_TIMEOUT) as client:
                        self._credentials.refresh(_transport(client))  # type: ignore[no-untyped-call]
            except google.auth.exceptions.TransportError as exc:
                raise ProviderUnavailable(
                    f"cannot reach Google's token endpoint: {exc}", provider=self.provider
                ) from None
            except google.auth.exceptions.GoogleAuthError as exc:
                raise ProviderAuthError(
                    f"Application Default Credentials: {exc}", provider=self.provider
                ) from None
            return str(self._credentials.token)


def _transport(client: httpx.Client) -> Any:
    """google-auth's ``Request`` over an httpx client."""
    import google.auth.exceptions  # noqa: PLC0415
    import google.auth.transport  # noqa: PLC0415

    class Response(google.auth.transport.Response):
        def __init__(self, response: httpx.Response) -> None:
            self._response = response

        @property
        def status(self) -> int:
            return self._response.status_code

        @property
        def headers(self) -> Mapping[str, str]:
            return self._response.headers

        @property
        def data(self) -> bytes:
            return self._response.content

    class Request(google.auth.transport.Request):
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: Mapping[str, str] | None = None,
            timeout: float | None = None,
            **_: Any,
        ) -> Response:
            try:
                answer = client.request(
                    method, url, content=body, headers=headers, timeout=timeout or _TOKEN_TIMEOUT
                )
            except httpx.HTTPError as exc:
                raise google.auth.exceptions.TransportError(type(exc).__name__) from None  # type: ignore[no-untyped-call]
            return Response(answer)

    return Request()
