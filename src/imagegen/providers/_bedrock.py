"""Amazon Bedrock's image models, through boto3's ``bedrock-runtime`` in worker threads.

boto3 is an optional extra (``pip install 'imagegen-failover[bedrock]'``): nothing here
imports it at module level. Each ``InvokeModel`` runs in an anyio worker thread (boto3
blocks), bounded per event loop like R2Storage's calls, and abandoned, not waited for,
when the attempt ends first: the thread finishes on its own, within the client's read
timeout. The client is built with boto3's retries off, since a create that may have
reached Bedrock must not be sent again; credentials come from the usual AWS chain.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import anyio
import anyio.to_thread

from .._distribution import install_hint
from .._errors import (
    ContentRejected,
    InvalidConfig,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from .._models import ImageRequest
from ._base import Provider, ProviderContext, ProviderImage
from ._bedrock_wire import DEFAULT_MODEL, body_for, image_of, model_for, price_of

if TYPE_CHECKING:
    import boto3.session
    from mypy_boto3_bedrock.client import BedrockClient
    from mypy_boto3_bedrock_runtime.client import BedrockRuntimeClient

__all__ = ["Bedrock"]

_T = TypeVar("_T")
_DEFAULT_REGION = "us-west-2"  # where Stability's models run on demand
_READ_TIMEOUT = 120.0
_AUTH_CODES = frozenset(
    {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException",
     "InvalidSignatureException", "MissingAuthenticationTokenException"}
)  # fmt: skip
_THROTTLED = frozenset(
    {"ThrottlingException", "ModelNotReadyException", "TooManyRequestsException"}
)
_CONTENT_FILTERS = "blocked by our content filters"
#: Cross-region inference profiles prefix the model id with their geography.
_PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "global", "us-gov"})


class _NotSent(Exception):
    """The call was abandoned before anything was sent."""


class Bedrock(Provider):
    """Image models on Amazon Bedrock (``InvokeModel``), through boto3.

    Stability's models (``stability.stable-image-core-v1:1``, the default;
    ``stability.stable-image-ultra-v1:1``, ``stability.sd3-5-large-v1:0``; run on
    demand in ``us-west-2``) and Amazon's (``amazon.nova-canvas-v1:0``,
    ``amazon.titan-image-generator-v2:0``; both past their end of life in 2026, kept
    for accounts that still have them); an inference profile (``us.stability...``)
    or an ARN works as the model it names. One call makes one image: there is no job
    to cancel, and an abandoned call is billed all the same.

    **Request.** Stability: the nearest of its nine aspect ratios, ``negative_prompt``,
    ``seed``, PNG or JPEG; SD3.5 Large also takes one input image (image-to-image,
    ``strength`` 0.75 unless ``provider_options`` says otherwise). Amazon: ``TEXT_IMAGE``
    with ``negativeText`` and the nearest size the model takes (Nova: multiples of 16,
    up to 2048x2048; Titan: its 25 sizes); input images make an ``IMAGE_VARIATION`` (up
    to 5), one image with a mask an ``INPAINTING``. ``request.provider_options["bedrock"]``
    is merged into the body last (``cfgScale``, ``quality``, ``style``...).

    **Answer and errors.** A content filter (Stability's ``finish_reasons``, Amazon's
    400 "blocked by our content filters" or ``error``) is a :class:`ContentRejected`.
    Throttling is a retryable rate limit (nothing was made); a 5xx, a model error or a
    timeout after the call went out is not retried.

    Args:
        model: The model id, inference profile or ARN.
        region: The AWS region; default: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, else
            ``us-west-2``.
        client: A boto3 ``bedrock-runtime`` client of your own (turn its retries off:
            ``Config(retries={"total_max_attempts": 1})``); default: one built here.
        session: The boto3 session the clients are built from (a named profile, your
            own credentials); default: a new session on the usual AWS chain.
        endpoint_url: Where the built client sends its calls (a VPC endpoint, a proxy).
        max_workers: At most this many calls at once, per event loop.
    """

    name = "bedrock"
    # A call made is an image made and billed, whatever becomes of the answer.
    bills_unanswered: ClassVar[bool] = True
    #: Variables :meth:`from_env` reads: any one of them opts Bedrock in.
    env_settings: ClassVar[Mapping[str, str]] = {
        "model": "IMAGEGEN_BEDROCK_MODEL",
        "region": "IMAGEGEN_BEDROCK_REGION",
        "endpoint_url": "IMAGEGEN_BEDROCK_ENDPOINT_URL",
    }

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        region: str | None = None,
        client: BedrockRuntimeClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        max_workers: int = 16,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
        price_per_image: float | None = None,
    ) -> None:
        super().__init__(name=name, tier=tier, timeout=timeout, price_per_image=price_per_image)
        if not isinstance(model, str) or not model.strip() or model != model.strip():
            raise InvalidConfig(f"{self.name}: model must be a model id", field="model")
        if client is None and session is None:
            try:
                import boto3  # noqa: F401, PLC0415 - an optional extra
            except ImportError:
                raise InvalidConfig(
                    f"{self.name}: Bedrock needs boto3: {install_hint('bedrock')}",
                    field="model",
                ) from None
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise InvalidConfig(
                f"{self.name}: max_workers must be an int >= 1", field="max_workers"
            )
        self.model = model
        self.rules = model_for(model)
        self.input_images = self.rules.input_images
        self.masks = self.rules.masks
        self.region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or _DEFAULT_REGION
        )
        self.endpoint_url = endpoint_url
        self.max_workers = max_workers
        self._client = client
        self._boto_session = session
        self._building = threading.Lock()
        self._limiter: contextvars.ContextVar[anyio.CapacityLimiter] = contextvars.ContextVar(
            f"imagegen_bedrock_{id(self)}"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self | None:
        """Bedrock when ``environ`` opts in: ``AWS_BEARER_TOKEN_BEDROCK`` (a Bedrock API
        key, which botocore reads itself) or one of ``env_settings`` is set. AWS
        credentials alone do not opt in: they are often there for other services.

        Raises:
            InvalidConfig: boto3 is not installed, or a variable holds a bad value
                (the message and ``field`` name the variable).
        """
        settings = {arg: environ[var] for arg, var in cls.env_settings.items() if environ.get(var)}
        if not settings and not environ.get("AWS_BEARER_TOKEN_BEDROCK"):
            return None
        try:
            return cls(
                model=settings.get("model", DEFAULT_MODEL),
                region=settings.get("region"),
                endpoint_url=settings.get("endpoint_url"),
            )
        except InvalidConfig as exc:
            variable = cls.env_settings.get(exc.field or "", "IMAGEGEN_BEDROCK_MODEL")
            raise InvalidConfig(f"{variable}: {exc}", field=variable) from None

    def client(self) -> BedrockRuntimeClient:
        """The ``bedrock-runtime`` client, built on first use (retries off).

        Building one reads botocore's service model (tens of milliseconds of CPU), so
        :meth:`generate` calls this in its worker thread, never on the event loop.
        """
        with self._building:
            if self._client is None:
                self._client = self._session().client(
                    "bedrock-runtime",
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=_config(),
                )
            return self._client

    def control_client(self) -> BedrockClient:
        """A client of Bedrock's control plane (``bedrock``), for :meth:`check`."""
        client: BedrockClient = self._session().client(
            "bedrock", region_name=self.region, endpoint_url=self.endpoint_url, config=_config()
        )
        return client

    def _session(self) -> boto3.session.Session:
        if self._boto_session is None:
            import boto3.session  # noqa: PLC0415 - checked at construction

            # A session of its own: boto3's default session is shared, mutable state.
            self._boto_session = boto3.session.Session()
        return self._boto_session

    def table_price(self, request: ImageRequest) -> float | None:
        """Bedrock's on-demand price of the model (Nova: by the size sent)."""
        return price_of(self.rules, request)

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """One ``InvokeModel`` in a worker thread; the image is in its answer."""
        body, warnings = body_for(request, self.rules)
        body.update(request.options_for(self.name))
        payload = json.dumps(body).encode()
        abandoned = threading.Event()

        def invoke() -> dict[str, Any]:
            client = self.client()
            if abandoned.is_set():  # given up while the client was built: send nothing
                raise _NotSent
            answer = client.invoke_model(
                modelId=self.model,
                body=payload,
                contentType="application/json",
                accept="application/json",
            )
            data: dict[str, Any] = json.loads(answer["body"].read())
            return data

        # The call may reach Bedrock from here on: it is not to be sent again. There is
        # nothing to cancel afterwards (the call is the whole of the work), so an
        # abandoned call's thread is left to end on its own.
        ctx._note_create_sent()  # noqa: SLF001 - the flag is this package's to set
        try:
            with anyio.move_on_after(ctx.remaining()) as waiting:
                answer = await self._call(invoke, sent=True)
        finally:
            abandoned.set()
        if waiting.cancelled_caught:
            # The thread is left to finish (threads cannot be stopped); its image is billed.
            raise ProviderTimeout("no answer by the deadline", provider=self.name, retryable=False)
        data, seed = image_of(answer, self.name)
        raw = {"model": self.model, "finish_reasons": answer.get("finish_reasons")}
        return ProviderImage(data=data, seed=seed, raw=raw, warnings=warnings)

    async def _call(self, func: Callable[[], _T], *, sent: bool) -> _T:
        """Run one blocking boto3 call in a bounded worker thread; map its errors."""
        limiter = self._limiter.get(None)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self.max_workers)
            self._limiter.set(limiter)
        try:
            return await anyio.to_thread.run_sync(func, limiter=limiter, abandon_on_cancel=True)
        except Exception as exc:
            error = self.error_for(exc, sent=sent)
            if error is None:
                raise
            raise error from None

    def error_for(self, exc: Exception, *, sent: bool = True) -> ProviderError | None:
        """The imagegen error a botocore exception stands for; None for anything else.

        ``sent``: the call may have made billable work, so only failures that prove it
        did not (throttling, a refused connection) are retryable.
        """
        from botocore.exceptions import (  # noqa: PLC0415 - boto3 is optional
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        name = self.name
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            said = f"{code}: {message}"
            if _CONTENT_FILTERS in message:
                return ContentRejected(said, provider=name, status=status, reason="content filters")
            if code in _AUTH_CODES:
                return ProviderAuthError(said, provider=name, status=status)
            if code in _THROTTLED:
                return ProviderRateLimited(said, provider=name, status=status)
            if code == "ServiceQuotaExceededException":
                return ProviderQuotaExceeded(said, provider=name, status=status)
            if code == "ModelTimeoutException":
                return ProviderTimeout(said, provider=name, status=status, retryable=not sent)
            if (isinstance(status, int) and status >= 500) or code == "ModelErrorException":
                return ProviderUnavailable(said, provider=name, status=status, retryable=not sent)
            return ProviderError(said, provider=name, status=status, retryable=False)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ProviderAuthError(f"AWS credentials: {exc}", provider=name)
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            return ProviderUnavailable(f"cannot connect: {type(exc).__name__}", provider=name)
        if isinstance(exc, ReadTimeoutError):
            return ProviderTimeout("no answer in time", provider=name, retryable=not sent)
        if isinstance(exc, BotoCoreError):
            return ProviderUnavailable(
                f"{type(exc).__name__}: {exc}", provider=name, retryable=not sent
            )
        if isinstance(exc, ValueError | KeyError):  # an unreadable answer body
            return ProviderUnavailable(
                f"unreadable answer: {type(exc).__name__}", provider=name, retryable=not sent
            )
        return None

    async def check(self, ctx: ProviderContext) -> None:
        """``GetFoundationModel`` on Bedrock's control plane: free; proves the
        credentials and that the model exists in the region (an inference profile or
        ARN is looked up as the model it names). A model marked ``LEGACY`` is logged.

        Raises:
            ProviderAuthError: The credentials were refused.
            ProviderError: The model is unknown there (404), or another failure.
        """
        control = self.control_client()
        # The model an inference profile (``us.stability...``) or an ARN names.
        identifier = self.model.rpartition("/")[2]
        prefix, _, rest = identifier.partition(".")
        if prefix in _PROFILE_PREFIXES and rest:
            identifier = rest
        answer = await self._call(
            lambda: control.get_foundation_model(modelIdentifier=identifier), sent=False
        )
        lifecycle = answer["modelDetails"].get("modelLifecycle")
        if lifecycle is not None and lifecycle["status"] == "LEGACY":
            ctx.logger.warning("%s: %s is a LEGACY model on Bedrock", self.name, self.model)

    def __repr__(self) -> str:
        return f"Bedrock(name={self.name!r}, model={self.model!r}, region={self.region!r})"


def _config() -> Any:
    """boto3's client settings: no retries (a create is never sent twice), bounded waits."""
    from botocore.config import Config  # noqa: PLC0415 - boto3 is optional

    return Config(
        # "total_max_attempts" counts the first call; botocore's "max_attempts" does not.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=_READ_TIMEOUT,
        user_agent_extra="imagegen",
    )
