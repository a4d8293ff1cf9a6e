"""Google's Application Default Credentials: Vertex AI's default source of tokens.

Through the ``google-auth`` package (the ``imagegen-failover[google]`` extra): a
service account's key file named by ``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth
application-default login``, or the metadata server on Google Cloud. Tokens are
refreshed in a worker thread before they expire, one refresh at a time, over httpx (no
second HTTP stack). A token string or callable needs none of this (``_tokens``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .._distribution import install_hint
from .._errors import InvalidConfig, ProviderAuthError, ProviderUnavailable

if TYPE_CHECKING:
    import google.auth.credentials

__all__ = ["GoogleADC"]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_TOKEN_TIMEOUT = 30.0


class GoogleADC:
    """Google's Application Default Credentials as a blocking token source.

    Args:
        provider: The provider's name, for errors.

    Raises:
        InvalidConfig: ``google-auth`` is not installed.
    """

    def __init__(self, provider: str) -> None:
        try:
            import google.auth  # noqa: F401, PLC0415 - only Vertex's ADC mode needs it
        except ImportError:
            raise InvalidConfig(
                f"{provider}: Vertex AI needs access_token= or Application Default "
                f"Credentials, which need google-auth: {install_hint('google')}",
                field="access_token",
            ) from None
        self.provider = provider
        self._credentials: google.auth.credentials.Credentials | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """ADC's token, refreshed first when it is missing or about to expire (called
        in a worker thread: google-auth reads files and makes blocking requests)."""
        return self._adc_token()

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
