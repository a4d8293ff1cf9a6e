"""Callback tokens: bound to the request they were issued for, used once, across processes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
import respx

from imagegen import Fal, ImageGenerator, MemoryState, SQLiteState, WebhookVerificationError
from imagegen._relay import WebhookRelay
from imagegen.providers import ProviderContext
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio

QUEUE = "https://queue.fal.run"
SUBMIT = f"{QUEUE}/fal-ai/flux/schnell"
HOOK = "https://example.com/hooks/fal"
IMAGE = "https://v3.fal.media/files/tiger/ours.png"
ATTACKER = "https://attacker.example/evil.png"


def token_fal() -> Fal:
    """fal's queue with per-request callback tokens."""
    return Fal(key="id:secret-key", queue=True, webhook_url=HOOK, webhook_auth="token")


def relay(state: Any, clock: FakeClock) -> WebhookRelay:
    return WebhookRelay(state, "imagegen:", clock)


class TestRelay:
    """The token records in the state backend."""

    async def test_bound_token_is_accepted_once_for_its_work(self, clock: FakeClock) -> None:
        """Only its request may use it, and only once; an unbound token authenticates nothing."""
        tokens = relay(MemoryState(timer=clock.monotonic), clock)
        token = await tokens.issue_token("fal", 60.0)
        assert not await tokens.redeem_token("fal", token, "req-a")  # not bound yet
        assert await tokens.bind_token("fal", token, "req-a", 60.0)
        assert not await tokens.redeem_token("fal", token, "req-b")
        assert not await tokens.redeem_token("other", token, "req-a")
        assert await tokens.redeem_token("fal", token, "req-a")
        for _ in range(3):
            assert not await tokens.redeem_token("fal", token, "req-a")

    async def test_binding_happens_once(self, clock: FakeClock) -> None:
        """A token is bound once, to a non-empty id, and only if it was issued and lives."""
        tokens = relay(MemoryState(timer=clock.monotonic), clock)
        token = await tokens.issue_token("fal", 60.0)
        assert not await tokens.bind_token("fal", "never-issued", "req-a", 60.0)
        assert not await tokens.bind_token("fal", token, "", 60.0)
        assert await tokens.bind_token("fal", token, "req-a", 60.0)
        assert not await tokens.bind_token("fal", token, "req-b", 60.0)
        assert await tokens.redeem_token("fal", token, "req-a")

    async def test_token_lives_until_its_ttl(self, clock: FakeClock) -> None:
        """Past the life it was bound for, the token is refused."""
        tokens = relay(MemoryState(timer=clock.monotonic), clock)
        token = await tokens.issue_token("fal", 60.0)
        assert await tokens.bind_token("fal", token, "req-a", 30.0)
        await clock.sleep(31.0)
        assert not await tokens.redeem_token("fal", token, "req-a")

    @pytest.mark.parametrize("bad", ["", "x" * 300])
    async def test_absurd_tokens_are_refused(self, clock: FakeClock, bad: str) -> None:
        """Empty or oversized tokens are refused without a lookup."""
        tokens = relay(MemoryState(timer=clock.monotonic), clock)
        assert not await tokens.redeem_token("fal", bad, "req-a")
        assert not await tokens.redeem_token("fal", "some-token", "")

    async def test_only_the_hash_is_stored(self, clock: FakeClock) -> None:
        """The backend holds the token's SHA-256 and the work id, never the token."""
        state = MemoryState(timer=clock.monotonic)
        tokens = relay(state, clock)
        token = await tokens.issue_token("fal", 60.0)
        await tokens.bind_token("fal", token, "req-a", 60.0)
        keys = await state.scan("imagegen:")
        assert keys
        assert not any(token in key for key in keys)
        values = [await state.get(key) or b"" for key in keys]
        assert values == [b"for:req-a"]

    async def test_single_use_holds_across_processes(self, tmp_path: Path) -> None:
        """Two processes on one SQLite file race to redeem one token: exactly one wins."""
        clock = FakeClock()
        here_state = SQLiteState(tmp_path / "state.db")
        there_state = SQLiteState(tmp_path / "state.db")
        try:
            here, there = relay(here_state, clock), relay(there_state, clock)
            for round_ in range(5):
                token = await here.issue_token("fal", 60.0)
                assert await there.bind_token("fal", token, f"req-{round_}", 60.0)
                wins: list[bool] = []

                async def redeem(
                    side: WebhookRelay, work: str, token: str = token, wins: list[bool] = wins
                ) -> None:
                    wins.append(await side.redeem_token("fal", token, work))

                async with anyio.create_task_group() as tg:
                    for side in (here, there, here, there):
                        tg.start_soon(redeem, side, f"req-{round_}")
                assert sorted(wins) == [False, False, False, True]
        finally:
            await here_state.aclose()
            await there_state.aclose()

    async def test_the_context_passes_the_vendors_retry_window(self, clock: FakeClock) -> None:
        """The token's life is the time left plus the retry window the provider names."""
        seen: list[tuple[str, float]] = []

        class Inbox:
            async def wait(self, work_id: str, within: float) -> None:
                return None

            async def issue_token(self, ttl: float) -> str:
                seen.append(("issue", ttl))
                return "tok"

            async def bind_token(self, token: str, work_id: str, ttl: float) -> bool:
                seen.append(("bind", ttl))
                return True

            async def redeem_token(self, token: str, work_id: str) -> bool:
                return token == "tok" and work_id == "req-a"

        ctx = ProviderContext(deadline=clock.monotonic() + 10, clock=clock, inbox=Inbox())
        assert await ctx.webhook_token(retry_window=100.0) == "tok"
        await clock.sleep(4.0)
        assert await ctx.bind_webhook_token("tok", "req-a", retry_window=100.0)
        assert await ctx.check_webhook_token("tok", work_id="req-a")
        assert not await ctx.check_webhook_token("tok", work_id="req-b")
        assert seen == [("issue", 110.0), ("bind", 106.0)]


def submitted(request_id: str) -> dict[str, str]:
    base = f"{QUEUE}/fal-ai/flux/requests/{request_id}"
    return {
        "request_id": request_id,
        "status": "IN_QUEUE",
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
    }


def delivery(request_id: str, url: str) -> bytes:
    payload = {"images": [{"url": url, "width": 8, "height": 8, "content_type": "image/png"}]}
    body = {"request_id": request_id, "status": "OK", "payload": payload}
    return json.dumps(body).encode()


def token_of(call: respx.models.Call) -> dict[str, str]:
    """The query parameters of the callback URL a submit carried."""
    hook = parse_qs(urlsplit(str(call.request.url)).query)["fal_webhook"][0]
    return {k: v[0] for k, v in parse_qs(urlsplit(hook).query).items()}


@asynccontextmanager
async def fal_vendor(clock: FakeClock) -> AsyncIterator[tuple[respx.Route, list[str]]]:
    """fal's queue on respx: each submit makes a new request; statuses stay IN_PROGRESS."""
    ids: list[str] = []

    def submit(_: httpx.Request) -> httpx.Response:
        ids.append(f"req-{len(ids) + 1}")
        return httpx.Response(200, json=submitted(ids[-1]))

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(url__startswith=SUBMIT).mock(side_effect=submit)
        mock.get(url__regex=r".*/status").respond(200, json={"status": "IN_PROGRESS"})
        mock.put(url__regex=r".*/cancel").respond(202, json={"status": "CANCELLATION_REQUESTED"})
        mock.get(IMAGE).respond(200, content=tiny_png())
        mock.get(ATTACKER).respond(200, content=tiny_png())
        yield route, ids


class TestFalTokens:
    """The attack of the issue: request A's token completing request B, and replays."""

    async def test_a_token_completes_only_its_own_request_once(
        self, clock: FakeClock, public_dns: None
    ) -> None:
        """A's token is refused for B and after its one use; each request gets its own image."""
        outcomes: dict[str, Any] = {}
        async with (
            httpx.AsyncClient() as http,
            fal_vendor(clock) as (submits, ids),
            ImageGenerator(
                providers=[
                    Fal(key="id:secret-key", queue=True, webhook_url=HOOK, webhook_auth="token")
                ],
                http=http,
                clock=clock,
                state=MemoryState(timer=clock.monotonic),
                default_image=None,
            ) as gen,
        ):

            async def generate(name: str) -> None:
                outcomes[name] = await gen.generate(f"prompt {name}")

            async def callbacks() -> None:
                await clock.sleep(1.0)
                assert ids == ["req-1", "req-2"]
                by_request = {
                    req: token_of(call) for req, call in zip(ids, submits.calls, strict=True)
                }
                a, b = by_request["req-1"], by_request["req-2"]
                # A's token, a body claiming B with the attacker's image: refused.
                with pytest.raises(WebhookVerificationError, match="imagegen_token"):
                    await gen.handle_webhook("fal", {}, delivery("req-2", ATTACKER), params=a)
                # A's own delivery is taken; every reuse of its token is refused.
                assert await gen.handle_webhook("fal", {}, delivery("req-1", IMAGE), params=a)
                for _ in range(3):
                    with pytest.raises(WebhookVerificationError):
                        await gen.handle_webhook("fal", {}, delivery("req-1", ATTACKER), params=a)
                # B's own token still works for B.
                await gen.handle_webhook("fal", {}, delivery("req-2", IMAGE), params=b)

            async with anyio.create_task_group() as tg:
                tg.start_soon(generate, "a")
                tg.start_soon(generate, "b")
                tg.start_soon(callbacks)
        assert {name: r.provider for name, r in outcomes.items()} == {"a": "fal", "b": "fal"}
        assert all(r.data == tiny_png() for r in outcomes.values())
        assert submits.call_count == 2

    async def test_an_unbound_token_is_refused(self, clock: FakeClock) -> None:
        """A token whose submit never answered (so never bound) authenticates nothing."""
        state = MemoryState(timer=clock.monotonic)
        async with (
            httpx.AsyncClient() as http,
            ImageGenerator(
                providers=[
                    Fal(key="id:secret-key", queue=True, webhook_url=HOOK, webhook_auth="token")
                ],
                http=http,
                clock=clock,
                state=state,
            ) as gen,
        ):
            token = await relay(state, clock).issue_token("fal", 60.0)
            params = {"imagegen_token": token}
            with pytest.raises(WebhookVerificationError):
                await gen.handle_webhook("fal", {}, delivery("req-1", ATTACKER), params=params)
            with pytest.raises(WebhookVerificationError):
                await gen.handle_webhook("fal", {}, b'{"status": "OK"}', params=params)

    async def test_a_lost_token_is_logged_and_polled(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture, public_dns: None
    ) -> None:
        """If the token cannot be bound (expired meanwhile), the request is polled instead."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                mock.post(url__startswith=SUBMIT).respond(200, json=submitted("req-1"))
                done = {"status": "COMPLETED", "logs": []}
                polls = mock.get(url__regex=r".*/status").respond(200, json=done)
                result = json.loads(delivery("req-1", IMAGE))["payload"]
                mock.get(f"{QUEUE}/fal-ai/flux/requests/req-1").respond(200, json=result)
                mock.get(IMAGE).respond(200, content=tiny_png())
                fal = token_fal()
                state = MemoryState(timer=clock.monotonic)
                async with ImageGenerator(
                    providers=[fal], http=http, clock=clock, state=state, default_image=None
                ) as gen:
                    real_set = state.set

                    async def forgetful_set(key: str, value: bytes, **kw: Any) -> None:
                        if "webhook-token" in key:
                            return  # the backend lost it (evicted, restarted)
                        await real_set(key, value, **kw)

                    state.set = forgetful_set  # type: ignore[method-assign]
                    image = await gen.generate("a red fox")
        assert image.provider == "fal"
        assert polls.call_count >= 1
        assert "could not be bound" in caplog.text
