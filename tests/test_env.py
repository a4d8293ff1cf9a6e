"""ImageGenerator.from_env(): offline defaults, namespaces and refused settings."""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import pytest

from imagegen import (
    DEFAULT,
    DownloadPolicy,
    Fal,
    Fallback,
    Hedge,
    ImageGenerator,
    InvalidConfig,
    LocalStorage,
    OpenAIImages,
    Placeholder,
    R2Storage,
    Race,
    RedisState,
    Replicate,
    SpendingCap,
    SQLiteState,
    Unsplash,
)

PROVIDER_KEYS = ("REPLICATE_API_TOKEN", "FAL_KEY", "UNSPLASH_ACCESS_KEY", "OPENAI_API_KEY")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """An environment with nothing but a data directory."""
    return {"IMAGEGEN_DATA_DIR": str(tmp_path)}


class TestOfflineDefaults:
    def test_parts(self, environ: dict[str, str], tmp_path: Path) -> None:
        """No key: one Placeholder, LocalStorage in DATA_DIR/images, SQLite at DATA_DIR."""
        gen = ImageGenerator.from_env(environ)
        assert [type(p) for p in gen.providers] == [Placeholder]
        assert isinstance(gen.storage, LocalStorage)
        assert gen.storage.directory == tmp_path / "images"
        assert gen.storage.base_url is None
        assert isinstance(gen.state, SQLiteState)
        assert gen.state.path == tmp_path / "state.sqlite3"
        assert gen.namespace is None
        assert isinstance(gen.strategy, Race)
        assert gen.timeout == 30.0
        assert gen.default_image is DEFAULT

    def test_default_data_dir_is_relative_to_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without IMAGEGEN_DATA_DIR everything goes under ./imagegen-data."""
        monkeypatch.chdir(tmp_path)
        gen = ImageGenerator.from_env({})
        assert isinstance(gen.storage, LocalStorage)
        assert isinstance(gen.state, SQLiteState)
        data = (tmp_path / "imagegen-data").resolve()
        assert gen.storage.directory.resolve() == data / "images"
        assert gen.state.path.resolve() == data / "state.sqlite3"

    def test_reads_os_environ_when_none_given(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """from_env() with no mapping reads os.environ."""
        monkeypatch.setenv("IMAGEGEN_DATA_DIR", str(tmp_path / "from-os"))
        for name in PROVIDER_KEYS:
            monkeypatch.delenv(name, raising=False)
        gen = ImageGenerator.from_env()
        assert isinstance(gen.state, SQLiteState)
        assert gen.state.path == tmp_path / "from-os" / "state.sqlite3"

    def test_public_base_url(self, environ: dict[str, str]) -> None:
        """IMAGEGEN_PUBLIC_BASE_URL becomes the LocalStorage base URL."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_PUBLIC_BASE_URL": "https://cdn.test"})
        assert isinstance(gen.storage, LocalStorage)
        assert gen.storage.url_for("a/b.png") == "https://cdn.test/a/b.png"

    @pytest.mark.anyio
    async def test_end_to_end(self, environ: dict[str, str], tmp_path: Path) -> None:
        """A generation is stored as a file, recorded in SQLite, and aclose() is idempotent."""
        gen = ImageGenerator.from_env(environ)
        result = await gen.generate("a lighthouse at dusk", width=64, height=64)
        assert result.provider == "placeholder"
        assert not result.is_default
        assert result.data is None
        assert result.key is not None
        assert isinstance(gen.storage, LocalStorage)
        path = gen.storage.path_for(result.key)
        assert path.is_relative_to(tmp_path / "images")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == result.sha256
        assert result.url == path.as_uri()
        record = await gen.record(result.id)
        assert record is not None
        assert record.status == "succeeded"
        assert record.key == result.key
        assert (tmp_path / "state.sqlite3").is_file()
        await gen.aclose()
        await gen.aclose()

    @pytest.mark.anyio
    async def test_state_persists_across_generators(self, environ: dict[str, str]) -> None:
        """A second generator on the same data dir reads the first one's record and stats."""
        async with ImageGenerator.from_env(environ) as first:
            result = await first.generate("x", width=64, height=64)
        async with ImageGenerator.from_env(environ) as second:
            record = await second.record(result.id)
            rows = await second.stats()
        assert record is not None
        assert record.id == result.id
        assert [(r.provider, r.requests, r.successes) for r in rows] == [("placeholder", 1, 1)]


class TestEnvironments:
    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("environment", "extra"),
        [
            pytest.param("staging", {}, id="argument"),
            pytest.param(None, {"IMAGEGEN_ENV": "staging"}, id="variable"),
            pytest.param("staging", {"IMAGEGEN_ENV": "production"}, id="argument-wins"),
        ],
    )
    async def test_namespace(
        self, environ: dict[str, str], environment: str | None, extra: dict[str, str]
    ) -> None:
        """The environment becomes the namespace and prefixes every stored key."""
        async with ImageGenerator.from_env({**environ, **extra}, environment=environment) as gen:
            assert gen.namespace == "staging"
            result = await gen.generate("x", width=64, height=64)
        assert result.key is not None
        assert result.key.startswith("staging/")

    @pytest.mark.anyio
    async def test_environments_do_not_meet(self, environ: dict[str, str]) -> None:
        """Generators of different environments on one data dir never see each other's data."""
        async with (
            ImageGenerator.from_env(environ, environment="staging") as staging,
            ImageGenerator.from_env(environ, environment="production") as production,
            ImageGenerator.from_env(environ) as plain,
        ):
            result = await staging.generate("x", width=64, height=64)
            assert await staging.record(result.id) is not None
            assert await production.record(result.id) is None
            assert await plain.record(result.id) is None
            assert len(await staging.stats()) == 1
            assert await production.stats() == []
            assert await plain.stats() == []

    def test_bad_environment_name_is_refused(self, environ: dict[str, str]) -> None:
        """An environment name that cannot be a key prefix raises InvalidConfig."""
        with pytest.raises(InvalidConfig):
            ImageGenerator.from_env(environ, environment="not/allowed")


class TestSettings:
    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("race", Race),
            ("hedge", Hedge),
            ("fallback", Fallback),
            (" Fallback ", Fallback),
            ("", Race),
        ],
    )
    def test_strategy(self, environ: dict[str, str], value: str, kind: type) -> None:
        """IMAGEGEN_STRATEGY picks Race, Hedge or Fallback (case and spaces ignored)."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_STRATEGY": value})
        assert type(gen.strategy) is kind

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("IMAGEGEN_STRATEGY", "random"),
            ("IMAGEGEN_TIMEOUT", "abc"),
            ("IMAGEGEN_CONFIG_TTL", "-1"),
            ("IMAGEGEN_MAX_IN_FLIGHT", "0"),
            ("IMAGEGEN_MAX_IN_FLIGHT", "2.5"),
            ("IMAGEGEN_MAX_IN_FLIGHT", "lots"),
            ("IMAGEGEN_REDIS_URL", "not-a-redis-url"),
            ("IMAGEGEN_SPENDING_CAP", "lots"),
            ("IMAGEGEN_SPENDING_CAP", "-5"),
            ("IMAGEGEN_SPENDING_CAP", "20,"),
            ("IMAGEGEN_SPENDING_CAP", "=5"),
            ("IMAGEGEN_SPENDING_CAP", "openai=inf"),
        ],
    )
    def test_refused(self, environ: dict[str, str], name: str, value: str) -> None:
        """A bad variable raises InvalidConfig naming it."""
        with pytest.raises(InvalidConfig, match=name) as info:
            ImageGenerator.from_env({**environ, name: value})
        assert info.value.field == name

    def test_redis_url_selects_redis_state(self, environ: dict[str, str]) -> None:
        """IMAGEGEN_REDIS_URL selects RedisState (connecting lazily, on first use)."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_REDIS_URL": "redis://127.0.0.1:1/0"})
        assert isinstance(gen.state, RedisState)

    @pytest.mark.parametrize("prefix", ["IMAGEGEN_R2_", "R2_"])
    def test_r2_variables_select_r2_storage(self, environ: dict[str, str], prefix: str) -> None:
        """A named R2 bucket and its credentials select R2Storage on R2's endpoint."""
        gen = ImageGenerator.from_env(
            {
                **environ,
                f"{prefix}BUCKET": "my-images",
                f"{prefix}ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
                f"{prefix}ACCESS_KEY_ID": "AKIDTEST",
                f"{prefix}SECRET_ACCESS_KEY": "shh-secret",
                "IMAGEGEN_PUBLIC_BASE_URL": "https://img.example.com",
                "IMAGEGEN_R2_PRESIGN_EXPIRES": "3600",
            }
        )
        storage = gen.storage
        assert isinstance(storage, R2Storage)
        assert storage.url_for("images/a.png") == "https://img.example.com/images/a.png"
        assert "shh-secret" not in repr(storage)

    def test_s3_endpoint_replaces_the_account(self, environ: dict[str, str]) -> None:
        """IMAGEGEN_S3_ENDPOINT_URL names the endpoint: no account id needed (none used),
        region us-east-1 unless IMAGEGEN_S3_REGION says otherwise."""
        s3 = {
            **environ,
            "IMAGEGEN_R2_BUCKET": "my-images",
            "IMAGEGEN_S3_ENDPOINT_URL": "http://127.0.0.1:9000/",
            "AWS_ACCESS_KEY_ID": "AKIDTEST",
            "AWS_SECRET_ACCESS_KEY": "shh-secret",
        }
        storage = ImageGenerator.from_env(s3).storage
        assert isinstance(storage, R2Storage)
        assert storage.client.meta.endpoint_url == "http://127.0.0.1:9000"
        assert storage.client.meta.region_name == "us-east-1"
        assert storage.url_for("images/a.png") == "http://127.0.0.1:9000/my-images/images/a.png"
        other = ImageGenerator.from_env(
            {**s3, "IMAGEGEN_S3_REGION": "eu-central-1", "R2_ACCOUNT_ID": "ignored"}
        ).storage
        assert isinstance(other, R2Storage)
        assert other.client.meta.region_name == "eu-central-1"

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"IMAGEGEN_S3_ENDPOINT_URL": "s3.example.com"}, "IMAGEGEN_S3_ENDPOINT_URL"),
            ({"IMAGEGEN_S3_ENDPOINT_URL": "ftp://s3.example.com"}, "IMAGEGEN_S3_ENDPOINT_URL"),
            ({"IMAGEGEN_S3_REGION": "eu central"}, "IMAGEGEN_S3_REGION"),
            ({"R2_ACCOUNT_ID": "not-hex"}, "R2_ACCOUNT_ID"),
            ({"IMAGEGEN_R2_SECRET_ACCESS_KEY": "  "}, "IMAGEGEN_R2_SECRET_ACCESS_KEY"),
        ],
    )
    def test_refused_storage_settings_name_the_variable(
        self, environ: dict[str, str], extra: dict[str, str], field: str
    ) -> None:
        """A bad endpoint, region, account id or key is refused under the variable that held it."""
        base = {
            **environ,
            "IMAGEGEN_R2_BUCKET": "images",
            "R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
            "IMAGEGEN_R2_ACCESS_KEY_ID": "AKID",
            "IMAGEGEN_R2_SECRET_ACCESS_KEY": "shh-secret",
        }
        if "IMAGEGEN_S3_ENDPOINT_URL" in extra:
            del base["R2_ACCOUNT_ID"]
        with pytest.raises(InvalidConfig, match=f"^{field}: ") as info:
            ImageGenerator.from_env({**base, **extra})
        assert info.value.field == field
        assert "shh-secret" not in str(info.value)

    def test_storage_refusals_of_no_variable_pass_unchanged(
        self, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error no variable caused (boto3 missing) keeps its own field."""
        monkeypatch.setitem(sys.modules, "boto3", None)
        monkeypatch.setitem(sys.modules, "boto3.session", None)
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator.from_env(
                {
                    **environ,
                    "IMAGEGEN_R2_BUCKET": "images",
                    "IMAGEGEN_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
                    "AWS_ACCESS_KEY_ID": "AKID",
                    "AWS_SECRET_ACCESS_KEY": "shh-secret",
                }
            )
        assert info.value.field == "boto3"

    def test_s3_endpoint_without_keys(self, environ: dict[str, str]) -> None:
        """With an endpoint and no keys, the missing key is named (not the account id)."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator.from_env(
                {
                    **environ,
                    "IMAGEGEN_R2_BUCKET": "images",
                    "IMAGEGEN_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
                }
            )
        assert info.value.field == "IMAGEGEN_R2_ACCESS_KEY_ID"

    def test_r2_bucket_without_credentials(self, environ: dict[str, str]) -> None:
        """A bucket without an account id is refused, naming the missing variable."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator.from_env({**environ, "IMAGEGEN_R2_BUCKET": "images"})
        assert info.value.field == "IMAGEGEN_R2_ACCOUNT_ID"

    @pytest.mark.parametrize(("value", "timeout"), [("12.5", 12.5), ("3", 3.0), ("", 30.0)])
    def test_timeout(self, environ: dict[str, str], value: str, timeout: float) -> None:
        """IMAGEGEN_TIMEOUT sets the overall timeout; empty means the default."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_TIMEOUT": value})
        assert gen.timeout == timeout

    def test_config_ttl(self, environ: dict[str, str]) -> None:
        """IMAGEGEN_CONFIG_TTL sets how often shared settings are looked at (default 5 s)."""
        assert ImageGenerator.from_env(environ).config_ttl == 5.0
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_CONFIG_TTL": "1.5"})
        assert gen.config_ttl == 1.5

    @pytest.mark.parametrize(
        ("value", "expected"), [("", 100), ("250", 250), (" 1 ", 1), ("none", None), ("None", None)]
    )
    def test_max_in_flight(self, environ: dict[str, str], value: str, expected: int | None) -> None:
        """IMAGEGEN_MAX_IN_FLIGHT bounds concurrent provider calls; none lifts the bound."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_MAX_IN_FLIGHT": value})
        assert gen.max_in_flight == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("", None),
            ("20", SpendingCap(daily=20)),
            (" 0.5 ", SpendingCap(daily=0.5)),
            ("openai=5, fal=2.5", SpendingCap(per_provider={"openai": 5, "fal": 2.5})),
            ("20,openai=5", SpendingCap(daily=20, per_provider={"openai": 5})),
        ],
    )
    def test_spending_cap(
        self, environ: dict[str, str], value: str, expected: SpendingCap | None
    ) -> None:
        """IMAGEGEN_SPENDING_CAP: USD a day for all providers, name=USD for one, or both."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_SPENDING_CAP": value})
        assert gen.spending_cap == expected

    @pytest.mark.parametrize("value", ["none", "None", " NONE "])
    def test_no_default_image(self, environ: dict[str, str], value: str) -> None:
        """IMAGEGEN_DEFAULT_IMAGE=none turns the default image off."""
        gen = ImageGenerator.from_env({**environ, "IMAGEGEN_DEFAULT_IMAGE": value})
        assert gen.default_image is None

    @pytest.mark.parametrize(
        ("variables", "expected"),
        [
            ({"REPLICATE_API_TOKEN": "r8_secret-value-123"}, [Replicate]),
            ({"FAL_KEY": "id:secret-value-123"}, [Fal]),
            ({"FAL_KEY_ID": "id", "FAL_KEY_SECRET": "secret-value-123"}, [Fal]),
            ({"OPENAI_API_KEY": "sk-secret-value-123"}, [OpenAIImages]),
            ({"UNSPLASH_ACCESS_KEY": "secret-value-123"}, [Unsplash]),
            (
                {
                    "UNSPLASH_ACCESS_KEY": "u-secret-value-123",
                    "OPENAI_API_KEY": "sk-secret-value-123",
                    "FAL_KEY": "f-secret-value-123",
                    "REPLICATE_API_TOKEN": "r8_secret-value-123",
                },
                [Replicate, Fal, OpenAIImages, Unsplash],
            ),
        ],
    )
    def test_provider_keys_select_hosted_providers(
        self,
        environ: dict[str, str],
        variables: dict[str, str],
        expected: list[type],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Each key found selects its provider, AI first, stock last; no key is ever logged."""
        with caplog.at_level(logging.DEBUG, logger="imagegen"):
            gen = ImageGenerator.from_env({**environ, **variables})
        assert [type(p) for p in gen.providers] == expected
        assert [p.tier for p in gen.providers] == [1 if cls is Unsplash else 0 for cls in expected]
        for value in variables.values():
            assert value not in caplog.text
            assert value not in repr(gen.providers)

    def test_provider_settings_from_the_environment(self, environ: dict[str, str]) -> None:
        """Model, app and gateway variables reach the providers they configure."""
        gen = ImageGenerator.from_env(
            {
                **environ,
                "REPLICATE_API_TOKEN": "r8_x",
                "IMAGEGEN_REPLICATE_MODEL": "owner/model",
                "FAL_KEY": "k",
                "IMAGEGEN_FAL_APP": "fal-ai/flux/dev",
                "IMAGEGEN_FAL_WEBHOOK_URL": "https://hooks.example.com/webhooks/fal",
                "IMAGEGEN_FAL_WEBHOOK_AUTH": "token",
                "OPENAI_API_KEY": "sk",
                "IMAGEGEN_OPENAI_MODEL": "dall-e-3",
                "OPENAI_BASE_URL": "https://gateway.example.com/v1",
            }
        )
        replicate, fal, openai = gen.providers
        assert isinstance(replicate, Replicate)
        assert replicate.model == "owner/model"
        assert isinstance(fal, Fal)
        assert fal.app == "fal-ai/flux/dev"
        assert (fal.webhook_url, fal.webhook_auth) == (
            "https://hooks.example.com/webhooks/fal",
            "token",
        )
        assert isinstance(openai, OpenAIImages)
        assert (openai.model, openai.base_url) == ("dall-e-3", "https://gateway.example.com/v1")

    def test_base_urls_from_the_environment(self, environ: dict[str, str]) -> None:
        """Each hosted provider's base URL has a variable; fal's queue and Platform API
        follow IMAGEGEN_FAL_BASE_URL unless their own variables are set."""
        keys = {
            "REPLICATE_API_TOKEN": "r8_x",
            "FAL_KEY": "id:secret",
            "OPENAI_API_KEY": "sk",
            "UNSPLASH_ACCESS_KEY": "u",
        }
        gen = ImageGenerator.from_env(
            {
                **environ,
                **keys,
                "IMAGEGEN_REPLICATE_BASE_URL": "http://127.0.0.1:8765/replicate/v1",
                "IMAGEGEN_FAL_BASE_URL": "http://127.0.0.1:8765/fal/run",
                "OPENAI_BASE_URL": "http://127.0.0.1:8765/openai/v1",
                "IMAGEGEN_UNSPLASH_BASE_URL": "http://127.0.0.1:8765/unsplash/",
            }
        )
        fal = gen.providers[1]
        assert isinstance(fal, Fal)
        assert [getattr(p, "base_url", None) for p in gen.providers] == [
            "http://127.0.0.1:8765/replicate/v1",
            "http://127.0.0.1:8765/fal/run",
            "http://127.0.0.1:8765/openai/v1",
            "http://127.0.0.1:8765/unsplash",
        ]
        assert (fal.queue_url, fal.platform_url) == (
            "http://127.0.0.1:8765/fal/queue",
            "http://127.0.0.1:8765/fal/v1",
        )
        moved = ImageGenerator.from_env(
            {
                **environ,
                "FAL_KEY": "id:secret",
                "IMAGEGEN_FAL_BASE_URL": "https://gw.example/fal",
                "IMAGEGEN_FAL_QUEUE_URL": "https://queue.gw.example",
                "IMAGEGEN_FAL_PLATFORM_URL": "https://platform.gw.example/v1",
            }
        ).providers[0]
        assert isinstance(moved, Fal)
        assert (moved.base_url, moved.queue_url, moved.platform_url) == (
            "https://gw.example/fal",
            "https://queue.gw.example",
            "https://platform.gw.example/v1",
        )

    @pytest.mark.parametrize(
        ("key", "name"),
        [
            ("REPLICATE_API_TOKEN", "IMAGEGEN_REPLICATE_BASE_URL"),
            ("FAL_KEY", "IMAGEGEN_FAL_BASE_URL"),
            ("FAL_KEY", "IMAGEGEN_FAL_QUEUE_URL"),
            ("FAL_KEY", "IMAGEGEN_FAL_PLATFORM_URL"),
            ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
            ("UNSPLASH_ACCESS_KEY", "IMAGEGEN_UNSPLASH_BASE_URL"),
        ],
    )
    def test_refused_base_urls_name_the_variable(
        self, environ: dict[str, str], key: str, name: str
    ) -> None:
        """A base URL that is not an http(s) URL is InvalidConfig naming its variable."""
        with pytest.raises(InvalidConfig, match=f"^{name}: .*must be an http") as info:
            ImageGenerator.from_env({**environ, key: "id:secret-value", name: "gw.example/v1"})
        assert info.value.field == name
        assert "secret-value" not in str(info.value)

    def test_other_refused_provider_settings_name_the_variable(
        self, environ: dict[str, str]
    ) -> None:
        """Any provider setting read from a variable is refused under the variable's name."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator.from_env({**environ, "FAL_KEY": "k", "IMAGEGEN_FAL_APP": "flux"})
        assert info.value.field == "IMAGEGEN_FAL_APP"

    @pytest.mark.parametrize(
        ("value", "allow_http", "allow_private"),
        [
            ("", False, False),
            ("http", True, False),
            ("private", False, True),
            ("http,private", True, True),
            (" Private , HTTP ,", True, True),
        ],
    )
    def test_download_allow(
        self, environ: dict[str, str], value: str, allow_http: bool, allow_private: bool
    ) -> None:
        """IMAGEGEN_DOWNLOAD_ALLOW turns on plain http and private networks for downloads;
        the other limits keep their defaults."""
        download = ImageGenerator.from_env({**environ, "IMAGEGEN_DOWNLOAD_ALLOW": value}).download
        assert (download.allow_http, download.allow_private_networks) == (allow_http, allow_private)
        assert (download.max_bytes, download.max_pixels) == (
            DownloadPolicy().max_bytes,
            DownloadPolicy().max_pixels,
        )

    @pytest.mark.parametrize("value", ["1", "yes", "http,metadata", "http;private"])
    def test_download_allow_refused(self, environ: dict[str, str], value: str) -> None:
        """Anything but http and private is refused, naming the variable and the words."""
        with pytest.raises(InvalidConfig, match="IMAGEGEN_DOWNLOAD_ALLOW must be http, private"):
            ImageGenerator.from_env({**environ, "IMAGEGEN_DOWNLOAD_ALLOW": value})

    def test_no_warning_without_keys(
        self, environ: dict[str, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        """With no provider key nothing is logged at warning level."""
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            ImageGenerator.from_env(environ)
        assert caplog.records == []
