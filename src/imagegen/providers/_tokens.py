"""Bearer tokens fetched before each request: a string, a callable, or a default source.

Vendors that take an OAuth or Entra token (Vertex AI, Azure OpenAI) accept it three
ways: a token string (it expires: an hour for Google's and Microsoft's), a callable
returning one (sync or async, called before every request: cache in it), or, where
the vendor has one, a default source run in a worker thread (Google's Application
Default Credentials). The last token handed out is kept so that it can be masked in
logs and errors.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import anyio.to_thread

from .._errors import InvalidConfig, ProviderAuthError

__all__ = ["AccessTokens", "TokenSource"]

#: A token, or what makes one when called.
TokenSource = str | Callable[[], str | Awaitable[str]]


class AccessTokens:
    """The bearer token of each request, from the caller's source or a default one.

    Args:
        source: A token, or a callable returning one; None for ``default``.
        provider: The provider's name, for errors.
        default: A blocking function returning a token (run in a worker thread), used
            when ``source`` is None.
        field: The constructor argument ``source`` came as, for errors.

    Raises:
        InvalidConfig: ``source`` is neither a non-empty string nor a callable, or is
            None without a ``default``.
    """

    def __init__(
        self,
        source: TokenSource | None,
        provider: str,
        *,
        default: Callable[[], str] | None = None,
        field: str = "access_token",
    ) -> None:
        self.provider = provider
        if source is None and default is None:
            raise InvalidConfig(f"{provider}: {field} is needed", field=field)
        usable = callable(source) or (isinstance(source, str) and bool(source.strip()))
        if source is not None and not usable:
            raise InvalidConfig(
                f"{provider}: {field} must be a non-empty string or a callable", field=field
            )
        self._source = source
        self._default = default
        #: The last token handed out (masked in logs and errors); None before the first.
        self.current: str | None = source.strip() if isinstance(source, str) else None

    @property
    def kind(self) -> str:
        """``token``, ``callable`` or ``default``: for repr."""
        if isinstance(self._source, str):
            return "token"
        return "callable" if self._source is not None else "default"

    async def get(self) -> str:
        """A token valid now.

        Raises:
            ProviderAuthError: The source gave no token (or the default source's own
                errors: it raises the ProviderError that fits).
        """
        if isinstance(self._source, str):
            return self._source.strip()
        if self._source is not None:
            value = self._source()
            token = await value if inspect.isawaitable(value) else value
        else:
            assert self._default is not None  # noqa: S101 - checked at construction
            token = await anyio.to_thread.run_sync(self._default, abandon_on_cancel=True)
        if not isinstance(token, str) or not token.strip():
            raise ProviderAuthError("the access token source gave no token", provider=self.provider)
        self.current = token.strip()
        return self.current
