"""Settings: defaults, the production and exposure guards, write-key parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import Settings


def test_embedded_defaults_put_chdb_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_environment({"PS_DATA_DIR": str(tmp_path)})
    assert settings.clickhouse_dsn == f"chdb://{tmp_path.resolve() / 'clickhouse'}"
    assert settings.serve_query_in_materializer is True
    assert settings.write_key_map() == {"dev-write-key": "source-1"}


def test_dev_credentials_refused_off_loopback() -> None:
    with pytest.raises(ValidationError, match="embedded default credentials"):
        Settings.from_environment({"PS_INGEST_HOST": "0.0.0.0"})
    with pytest.raises(ValidationError, match="embedded default credentials"):
        Settings.from_environment({"PS_QUERY_HOST": "0.0.0.0", "PS_WRITE_KEYS": "real-key"})
    exposed = Settings.from_environment(
        {"PS_INGEST_HOST": "0.0.0.0", "PS_WRITE_KEYS": "k1", "PS_ADMIN_TOKEN": "t"}
    )
    assert exposed.ingest_host == "0.0.0.0"


def test_production_needs_real_credentials_and_a_clickhouse_server() -> None:
    base = {"PS_MODE": "production", "PS_WRITE_KEYS": "k1", "PS_ADMIN_TOKEN": "t"}
    with pytest.raises(ValidationError, match="ClickHouse server"):
        Settings.from_environment(base)
    with pytest.raises(ValidationError, match="embedded default credentials"):
        Settings.from_environment(
            {
                **base,
                "PS_ADMIN_TOKEN": "dev-admin-token",
                "PS_CLICKHOUSE_DSN": "http://u:p@ch:8123/default",
            }
        )
    ok = Settings.from_environment({**base, "PS_CLICKHOUSE_DSN": "http://u:p@ch:8123/default"})
    assert ok.serve_query_in_materializer is False


def test_write_keys_with_sources_and_empty_list_refused() -> None:
    settings = Settings.from_environment({"PS_WRITE_KEYS": "a:web, b:ios ,c"})
    assert settings.write_key_map() == {"a": "web", "b": "ios", "c": "source-3"}
    with pytest.raises(ValidationError, match="no write key"):
        Settings.from_environment({"PS_WRITE_KEYS": " , "})


def test_ingest_rate_limit_is_off_by_default_and_validated() -> None:
    default = Settings.from_environment({})
    assert default.ingest_rate_limit_events_per_s == 0
    assert default.ingest_rate_limit_burst == 0
    derived = Settings.from_environment({"PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "250"})
    assert derived.ingest_rate_limit_burst == 500
    tiny = Settings.from_environment({"PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "0.1"})
    assert tiny.ingest_rate_limit_burst == 1
    explicit = Settings.from_environment(
        {"PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "250", "PS_INGEST_RATE_LIMIT_BURST": "100"}
    )
    assert explicit.ingest_rate_limit_burst == 100
    for rate in ("-1", "inf", "nan", "1e12"):
        with pytest.raises(ValidationError, match="ingest_rate_limit_events_per_s"):
            Settings.from_environment({"PS_INGEST_RATE_LIMIT_EVENTS_PER_S": rate})
    with pytest.raises(ValidationError, match="ingest_rate_limit_burst"):
        Settings.from_environment({"PS_INGEST_RATE_LIMIT_BURST": "-1"})


def test_write_key_origins_are_parsed_per_key() -> None:
    settings = Settings.from_environment(
        {
            "PS_WRITE_KEYS": "web-key:web,app-key:app",
            "PS_WRITE_KEY_ORIGINS": "web-key=https://shop.example http://127.0.0.1:9000/",
        }
    )
    assert settings.write_key_origin_map() == {
        "web-key": frozenset({"https://shop.example", "http://127.0.0.1:9000"})
    }


@pytest.mark.parametrize(
    ("origins", "problem"),
    [
        ("other-key=https://shop.example", r"names 1 key\(s\) that PS_WRITE_KEYS does not"),
        ("web-key=shop.example", "'shop.example' is not an origin"),
        ("web-key=https://shop.example/path", "is not an origin"),
        ("web-key", "expected key=origin"),
    ],
)
def test_bad_write_key_origins_are_refused(origins: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Settings.from_environment({"PS_WRITE_KEYS": "web-key", "PS_WRITE_KEY_ORIGINS": origins})


def test_source_secrets_name_known_sources() -> None:
    settings = Settings.from_environment(
        {"PS_WRITE_KEYS": "k1:web,k2:ios", "PS_SOURCE_SECRETS": "s3cr:et:web, other:ios"}
    )
    # the last colon separates the source, so a secret may contain colons
    assert settings.source_secret_map() == {"s3cr:et": "web", "other": "ios"}
    assert Settings.from_environment({"PS_WRITE_KEYS": "k1:web"}).source_secret_map() == {}
    # the embedded default: the dev write key's source has the dev secret, unless one is set
    assert Settings.from_environment({}).source_secret_map() == {"dev-source-secret": "source-1"}
    own = Settings.from_environment({"PS_SOURCE_SECRETS": "mine:source-1"})
    assert own.source_secret_map() == {"mine": "source-1"}
    with pytest.raises(ValidationError, match="no key of PS_WRITE_KEYS has: nowhere"):
        Settings.from_environment({"PS_WRITE_KEYS": "k1:web", "PS_SOURCE_SECRETS": "s:nowhere"})
    with pytest.raises(ValidationError, match="one secret names two sources"):
        Settings.from_environment(
            {"PS_WRITE_KEYS": "k1:web,k2:ios", "PS_SOURCE_SECRETS": "s:web,s:ios"}
        )
    with pytest.raises(ValidationError, match="holds a write key"):
        Settings.from_environment({"PS_WRITE_KEYS": "k1:web", "PS_SOURCE_SECRETS": "k1:web"})
    # the dev secret is a dev credential: refused off loopback like the dev write key
    with pytest.raises(ValidationError, match="embedded default credentials"):
        Settings.from_environment(
            {
                "PS_WRITE_KEYS": "real-key:web",
                "PS_ADMIN_TOKEN": "real-token",
                "PS_SOURCE_SECRETS": "dev-source-secret:web",
                "PS_INGEST_HOST": "0.0.0.0",
            }
        )
    for malformed in ("justasecret", ":web", "secret:"):
        with pytest.raises(ValidationError, match="expected secret:source"):
            Settings.from_environment({"PS_WRITE_KEYS": "k1:web", "PS_SOURCE_SECRETS": malformed})
