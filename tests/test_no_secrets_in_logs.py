"""No secret imagegen holds reaches a log record, at DEBUG, from any logger (httpx's included).

Every AI and stock vendor generates on the emulator with its key; Replicate and fal
have webhook URLs carrying credentials, fal uses per-request callback tokens, a
Replicate and a fal delivery are received, and an alert webhook whose URL has a
password and a query token delivers twice (once refused). With the root logger,
httpx, httpcore and imagegen all at DEBUG, no formatted record (message, arguments,
traceback) holds any of the secrets, as written or URL-encoded.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import httpx
import pytest
from benchmarks.emulator import Emulator, ProviderProfile

from imagegen import (
    DownloadPolicy,
    Fal,
    ImageGenerator,
    MemoryState,
    OpenAIImages,
    Replicate,
    Unsplash,
)
from imagegen._alert import Alert
from imagegen._alert_sinks import AlertWebhook
from imagegen._webhooks import install_log_redaction, sign_standard_webhook

pytestmark = pytest.mark.anyio

REPLICATE_TOKEN = "r8_replicate-key-0123456789"
REPLICATE_SECRET = "whsec_" + base64.b64encode(b"replicate webhook signing key!!").decode()
REPLICATE_HOOK = "https://hooks.example/replicate?key=replicate-hook-query-secret"
FAL_KEY = "fal-key-id:fal-key-secret-0123456789"
FAL_HOOK = "https://hookuser:fal-hook-p%40ssword@hooks.example/fal?key=fal-hook-query-secret"
OPENAI_KEY = "sk-openai-key-0123456789abcdef"
UNSPLASH_KEY = "unsplash-access-key-0123456789"
ALERT_URL = "https://alerter:alert-p%40ss-123@alerts.example/hook?token=alert-query-token"
ALERT_SECRET = "whsec_" + base64.b64encode(b"alert webhook signing key 0123").decode()
SECRETS = [
    REPLICATE_TOKEN,
    REPLICATE_SECRET,
    REPLICATE_SECRET.removeprefix("whsec_"),
    "replicate-hook-query-secret",
    FAL_KEY,
    "fal-key-secret-0123456789",
    "fal-hook-p@ssword",
    "fal-hook-query-secret",
    OPENAI_KEY,
    UNSPLASH_KEY,
    "alert-p@ss-123",
    "alert-query-token",
    ALERT_SECRET,
    ALERT_SECRET.removeprefix("whsec_"),
]
LOGGERS = ("", "httpx", "httpcore", "imagegen", "uvicorn.access")


def spellings(secret: str) -> set[str]:
    """A secret as written and URL-encoded once and twice."""
    once = quote(secret, safe="")
    return {secret, once, quote(once, safe="")}


def leaks(records: list[logging.LogRecord], secrets: list[str]) -> list[str]:
    """The formatted records that hold any spelling of any secret."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    found = []
    for record in records:
        text = f"{formatter.format(record)} {record.args!r}"
        if any(form in text for secret in secrets for form in spellings(secret)):
            found.append(text)
    return found


def alert() -> Alert:
    return Alert(
        kind="breaker_opened",
        provider="fal",
        message="fal's breaker opened",
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


async def run_vendors(emu: Emulator, tokens: list[str]) -> None:
    """One image from each vendor with its key; the webhooks Replicate and fal get."""
    sent: list[httpx.URL] = []

    async def remember(request: httpx.Request) -> None:
        sent.append(request.url)

    providers = [
        Replicate(
            api_token=REPLICATE_TOKEN,
            base_url=emu.base_url("replicate"),
            webhook_url=REPLICATE_HOOK,
            webhook_secret=REPLICATE_SECRET,
        ),
        Fal(
            key=FAL_KEY,
            base_url=emu.base_url("fal"),
            queue_url=emu.queue_url("fal"),
            queue=True,
            webhook_url=FAL_HOOK,
            webhook_auth="token",
        ),
        OpenAIImages(api_key=OPENAI_KEY, base_url=emu.base_url("openai"), model="flux-schnell"),
        Unsplash(access_key=UNSPLASH_KEY, base_url=emu.base_url("unsplash")),
    ]
    state = MemoryState()
    policy = DownloadPolicy(allow_http=True, allow_private_networks=True)
    async with httpx.AsyncClient(event_hooks={"request": [remember]}) as http:
        for provider in providers:
            async with ImageGenerator(
                providers=[provider], http=http, state=state, download=policy, default_image=None
            ) as gen:
                if isinstance(provider, Fal):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(deliver_to_fal, gen, emu, sent, tokens)
                        assert (await gen.generate("a red fox")).provider == "fal"
                else:
                    assert (await gen.generate("a red fox")).provider == provider.name
                if isinstance(provider, Replicate):
                    body = json.dumps({"id": "p-unknown", "status": "succeeded"}).encode()
                    at = int(dt.datetime.now(dt.UTC).timestamp())
                    headers = {
                        "webhook-id": "msg_1",
                        "webhook-timestamp": str(at),
                        "webhook-signature": sign_standard_webhook(
                            REPLICATE_SECRET, "msg_1", at, body
                        ),
                    }
                    assert await gen.handle_webhook("replicate", headers, body) == "late"


async def deliver_to_fal(
    gen: ImageGenerator, emu: Emulator, sent: list[httpx.URL], tokens: list[str]
) -> None:
    """fal's delivery for the queued request, bringing back its callback token."""
    for _ in range(500):  # the submit is in flight: five seconds at most
        if emu._instances["fal"].jobs:
            break
        await anyio.sleep(0.01)
    (request_id,) = emu._instances["fal"].jobs
    submit = next(url for url in sent if "fal_webhook" in str(url))
    hook = parse_qs(urlsplit(str(submit)).query)["fal_webhook"][0]
    params = {k: v[0] for k, v in parse_qs(urlsplit(hook).query).items() if k != "key"}
    tokens.append(params["imagegen_token"])
    async with httpx.AsyncClient() as own:
        result = await own.get(
            f"{emu.queue_url('fal')}/fal-ai/flux/requests/{request_id}",
            headers={"Authorization": "Key test"},
        )
    body = json.dumps({"request_id": request_id, "status": "OK", "payload": result.json()})
    assert await gen.handle_webhook("fal", {}, body.encode(), params=params) == "local"
    # What uvicorn's access log would write for that delivery.
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50000",
        "POST",
        f"/webhooks/fal?imagegen_token={params['imagegen_token']}",
        "1.1",
        204,
    )


async def run_alerts() -> httpx.Request:
    """Two alert deliveries: one taken, one refused; the last request the receiver saw."""
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204 if len(seen) == 1 else 500)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        sink = AlertWebhook(ALERT_URL, secret=ALERT_SECRET, http=http, attempts=1)
        async with sink:
            sink(alert())
            sink(alert())
    assert (sink.delivered, sink.dropped) == (1, 1)
    return seen[0]


async def test_no_secret_reaches_any_log_record(caplog: pytest.LogCaptureFixture) -> None:
    """Generations, webhooks and alerts at DEBUG: no record holds a secret."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    tokens: list[str] = []
    profiles = {api: ProviderProfile(api=api) for api in ("replicate", "fal", "openai", "unsplash")}
    async with Emulator(profiles) as emu:
        await run_vendors(emu, tokens)
    received = await run_alerts()
    records = caplog.records
    assert tokens  # the fal delivery brought its token back
    assert not leaks(records, [*SECRETS, *tokens])
    # Not vacuous: httpx did log the submit and the alerts, with the secrets masked.
    logged = [r.getMessage() for r in records if r.name == "httpx"]
    assert any("fal_webhook" in line and "imagegen_token%3D***" in line for line in logged)
    assert any("alerts.example/hook?token=***" in line for line in logged)
    access = [r.getMessage() for r in records if r.name == "uvicorn.access"]
    assert access == ['127.0.0.1:50000 - "POST /webhooks/fal?imagegen_token=*** HTTP/1.1" 204']
    # The alert's password went as Basic auth, not in the URL.
    assert received.url.userinfo == b""
    expected = base64.b64encode(b"alerter:alert-p@ss-123").decode()
    assert received.headers["authorization"] == f"Basic {expected}"
    assert received.url.params["token"] == "alert-query-token"


class TestFilter:
    """The filter on httpx's and uvicorn's access loggers."""

    def test_installing_twice_adds_one_filter(self) -> None:
        """install_log_redaction is idempotent."""
        install_log_redaction()
        install_log_redaction()
        for name in ("httpx", "uvicorn.access"):
            filters = logging.getLogger(name).filters
            assert sum(type(f).__name__ == "_RedactSecrets" for f in filters) == 1

    def test_other_records_pass_untouched(self, caplog: pytest.LogCaptureFixture) -> None:
        """Records without imagegen's secrets keep their message and argument types."""
        install_log_redaction()
        caplog.set_level(logging.INFO, logger="httpx")
        url = httpx.URL("https://other.example/x?token=theirs-not-ours")
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK"
        )
        (record,) = [r for r in caplog.records if r.name == "httpx"]
        assert record.args is not None
        assert record.args[1] is url
        assert "theirs-not-ours" in record.getMessage()

    def test_mapping_arguments_are_masked(self, caplog: pytest.LogCaptureFixture) -> None:
        """A record formatted from a mapping has its values masked too."""
        install_log_redaction()
        caplog.set_level(logging.INFO, logger="httpx")
        logging.getLogger("httpx").info(
            "%(url)s", {"url": "https://h.example/?imagegen_token=abcdef"}
        )
        (record,) = [r for r in caplog.records if r.name == "httpx"]
        assert record.getMessage() == "https://h.example/?imagegen_token=***"


def test_only_while_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    """A hidden secret is masked inside the block and not after it."""
    from imagegen._webhooks import hidden_in_logs  # noqa: PLC0415 - only this test needs it

    caplog.set_level(logging.INFO, logger="httpx")
    log = logging.getLogger("httpx")
    with hidden_in_logs("in-flight-secret", None, "abc", urls=["https://u:pw-secret@h.example/"]):
        with hidden_in_logs("in-flight-secret"):
            log.info("inner %s %s", "in-flight-secret", "pw-secret")
        log.info("outer %s %s", quote("in-flight-secret", safe=""), "abc")
    log.info("after %s", "in-flight-secret")
    messages = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert messages == ["inner *** ***", "outer *** abc", "after in-flight-secret"]
