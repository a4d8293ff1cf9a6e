"""imagegen: prompt in, stored image out, across providers that may be slow, failing or down.

Everything public is importable from here; the submodules ``imagegen.providers``,
``imagegen.strategies``, ``imagegen.storage``, ``imagegen.state`` and
``imagegen.testing`` hold the same names grouped by part.
"""

from ._alert import Alert, AlertKind, AlertSink
from ._alert_rules import Alerts
from ._alert_sinks import AlertWebhook, LogAlerts
from ._clock import Clock, SystemClock
from ._download import DownloadPolicy
from ._errors import (
    AllProvidersFailed,
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
)
from ._experiments import Experiment, Variant
from ._generator import DEFAULT, Hook, ImageGenerator
from ._inputs import InputImage
from ._models import (
    Attempt,
    Event,
    GeneratedImage,
    ImageRequest,
    ImageResult,
    Job,
    ProviderDayStats,
    Record,
    RequestWarning,
    VariantDayStats,
)
from ._previews import Preview
from ._spending import SpendingCap
from ._sync import SyncGenerator, generate_sync
from ._telemetry import Telemetry
from ._webhooks import sign_standard_webhook, verify_fal_webhook, verify_standard_webhook
from .providers import (
    XAI,
    AzureOpenAI,
    Bedrock,
    BlackForestLabs,
    Fal,
    Google,
    HTTPProvider,
    HuggingFace,
    OpenAIImages,
    Placeholder,
    Provider,
    ProviderContext,
    ProviderImage,
    Replicate,
    Stability,
    Together,
    Unsplash,
    WebhookReceiver,
)
from .state import (
    MemoryState,
    RedisState,
    SQLiteState,
    StateBackend,
    SupportsIncrMany,
    SupportsWriteBatch,
)
from .storage import (
    LocalStorage,
    MemoryStorage,
    R2Storage,
    Storage,
    StorageStats,
    StoredObject,
    r2_client,
)
from .strategies import (
    BreakerSnapshot,
    CircuitBreaker,
    Fallback,
    Hedge,
    ProviderBreaker,
    Race,
    Retry,
    Selection,
    Tier,
)

__all__ = [
    "DEFAULT",
    "XAI",
    "Alert",
    "AlertKind",
    "AlertSink",
    "AlertWebhook",
    "Alerts",
    "AllProvidersFailed",
    "Attempt",
    "AzureOpenAI",
    "Bedrock",
    "BlackForestLabs",
    "BreakerSnapshot",
    "CircuitBreaker",
    "CircuitOpen",
    "Clock",
    "ContentRejected",
    "DownloadPolicy",
    "Event",
    "Experiment",
    "Fal",
    "Fallback",
    "GeneratedImage",
    "GenerationCancelled",
    "GenerationLost",
    "Google",
    "HTTPProvider",
    "Hedge",
    "Hook",
    "HuggingFace",
    "ImageGenError",
    "ImageGenerator",
    "ImageRequest",
    "ImageResult",
    "InputImage",
    "InvalidConfig",
    "InvalidRequest",
    "Job",
    "JobCancelled",
    "JobLost",
    "JobTimeout",
    "LocalStorage",
    "LogAlerts",
    "MemoryState",
    "MemoryStorage",
    "NotRunning",
    "OpenAIImages",
    "Placeholder",
    "Preview",
    "Provider",
    "ProviderAuthError",
    "ProviderBreaker",
    "ProviderContext",
    "ProviderDayStats",
    "ProviderError",
    "ProviderImage",
    "ProviderQuotaExceeded",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnavailable",
    "R2Storage",
    "Race",
    "Record",
    "RedisState",
    "Replicate",
    "RequestWarning",
    "Retry",
    "SQLiteState",
    "Selection",
    "SpendingCap",
    "SpendingCapReached",
    "Stability",
    "StateBackend",
    "Storage",
    "StorageError",
    "StorageStats",
    "StoredObject",
    "SupportsIncrMany",
    "SupportsWriteBatch",
    "SyncGenerator",
    "SystemClock",
    "Telemetry",
    "Tier",
    "Together",
    "UnknownJob",
    "UnknownProvider",
    "Unsplash",
    "Variant",
    "VariantDayStats",
    "WebhookReceiver",
    "WebhookVerificationError",
    "generate_sync",
    "r2_client",
    "sign_standard_webhook",
    "verify_fal_webhook",
    "verify_standard_webhook",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415 - only when asked

        from ._distribution import DISTRIBUTION  # noqa: PLC0415

        return version(DISTRIBUTION)
    msg = f"module 'imagegen' has no attribute {name!r}"
    raise AttributeError(msg)
