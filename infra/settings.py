"""The one settings object. Every address, credential and limit is an environment variable
prefixed `PS_`; nothing else in the code base reads the environment."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_WRITE_KEY = "dev-write-key"
DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - the documented embedded-mode default
# The dev write key's server-side secret (PS_SOURCE_SECRETS), when none is set.
DEV_SOURCE_SECRET = "dev-source-secret"  # noqa: S105 - the documented embedded-mode default


ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+")
DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalized_origin(origin: str) -> str:
    """An origin as browsers send it: scheme and host in lower case, no default port, no
    trailing slash (so `HTTPS://Shop.example:443/` matches `https://shop.example`)."""
    scheme, separator, rest = origin.strip().rstrip("/").partition("://")
    if not separator:
        return origin.strip()
    scheme, rest = scheme.lower(), rest.lower()
    host, colon, port = rest.rpartition(":")
    if colon and port == DEFAULT_PORTS.get(scheme):
        rest = host
    return f"{scheme}://{rest}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PS_", extra="ignore")

    # "embedded": Tansu, Valkey and chDB started by `make up`; "production": external services.
    mode: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path(".data")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    events_topic: str = "ps.events"
    rejections_topic: str = "ps.rejections"
    dead_letter_topic: str = "ps.dead-letter"
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    # Tansu rejects InitProducerId, so idempotence is off by default; dedup by messageId covers
    # producer retries. Turn it on against Apache Kafka.
    kafka_idempotent_producer: bool = False
    kafka_request_timeout_ms: int = Field(default=5000, ge=100)

    # Redis
    redis_url: str = "redis://127.0.0.1:16379/0"

    # ClickHouse: "chdb://<path>" (in-process, embedded) or "http://user:pass@host:8123/db".
    clickhouse_dsn: str = ""

    # Ingest
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8000
    # Comma-separated write keys, each optionally "key:source-name".
    write_keys: SecretStr = SecretStr(DEV_WRITE_KEY)
    # Browser origins each write key may be used from: "key=origin origin;key2=origin". A key
    # not named here may be used from any origin. Requests without an Origin header (servers,
    # mobile apps) are not affected: a write key is public in a browser, and this stops other
    # websites from sending with it from their visitors' browsers, nothing more.
    write_key_origins: SecretStr = SecretStr("")
    # Server-side secrets, "secret:source,secret2:source2", each naming a source of
    # PS_WRITE_KEYS: what a server proves itself with where a public write key is not enough.
    # Mixpanel's /import takes one as its Basic-auth secret (user name or password), and a
    # Segment Webhooks destination signs its bodies with one (X-Signature, HMAC-SHA1). Empty:
    # both are refused, except that the dev write key's source gets `dev-source-secret`.
    source_secrets: SecretStr = SecretStr("")
    # Sources (comma-separated) whose Segment Webhooks (Actions) destination batches: only for
    # them is a signature over the first element of a JSON array accepted, which is all Segment
    # signs of a batch (so anyone who saw one such request could append events to it).
    segment_webhook_batched_sources: str = ""
    # How long a browser may cache a CORS preflight answer.
    cors_max_age_s: int = Field(default=600, ge=0, le=86400)
    # The ingest URL clients reach (for the SDK settings document), e.g. https://ingest.example.com;
    # empty: the URL each request came in on.
    ingest_public_url: str = ""
    max_event_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_message_id_length: int = 100
    # Corrected timestamps further than this in the future of receivedAt are rejected.
    max_future_skew_s: int = 24 * 3600
    # Clock-skew correction (timestamp = receivedAt - (sentAt - originalTimestamp)) applies only
    # when the client's clock is further than this from ours; closer, the difference is the
    # request's transit time and the client's own times are kept. 0: always correct.
    clock_skew_tolerance_s: float = Field(default=10.0, ge=0, le=3600)
    publish_timeout_s: float = 10.0
    retry_after_s: int = 5
    # Per-source token bucket counted in events, held by each ingest process (N replicas allow N
    # times the rate). 0 turns it off, the default, so embedded mode is unlimited. The upper bound
    # only keeps the derived burst a sane integer.
    ingest_rate_limit_events_per_s: float = Field(default=0.0, ge=0, le=1e9, allow_inf_nan=False)
    # Bucket size in events; 0 means twice the rate (at least 1).
    ingest_rate_limit_burst: int = Field(default=0, ge=0)

    # Query
    query_host: str = "127.0.0.1"
    query_port: int = 8001
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    max_page_size: int = 1000
    # A management write, or a read given `after=<position>`, waits at most this long for the
    # materializer to apply the write (read-your-writes).
    applied_wait_s: float = Field(default=5.0, ge=0)
    # What one analyst query (insights counts, the event catalog) may cost ClickHouse: past
    # either, it stops and the request answers 400 (a shorter range, a narrower breakdown).
    analytics_max_seconds: float = Field(default=20.0, gt=0)
    analytics_max_memory_mb: int = Field(default=2048, gt=0)

    # Materializer
    app_id: str = "profilestream-materializer"
    # A batch is what one fetch brought, up to this many messages (a message of ingest's holds
    # a request's events for one partition); it is written in chunks of at most this many
    # events, each one INSERT and one Lua run.
    batch_max_events: int = Field(default=2000, ge=1)
    batch_within_s: float = Field(default=0.1, gt=0)
    # Redis remembers an event's messageId (exact dedup) until this many days after the
    # event's day; a resend of an older event is checked against ClickHouse instead.
    dedup_window_days: int = Field(default=30, ge=1, le=3650)
    sink_retry_max_s: float = 5.0
    # Embedded mode: the materializer process owns the chDB directory and serves the query API.
    serve_query_in_materializer: bool | None = None
    # Faust's defaults make the first group join take 30 s on Tansu; these take 3 s. Raise them
    # for a busy Kafka cluster.
    broker_session_timeout_s: float = Field(default=6.0, gt=0)
    broker_rebalance_timeout_s: float = Field(default=4.0, gt=0)
    broker_heartbeat_interval_s: float = Field(default=1.0, gt=0)

    # Operations (issue 15)
    # The worker's own small HTTP server: /metrics, /healthz and /readyz.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 8002
    # /readyz of the worker answers 503 when it holds unprocessed messages (lag) and has
    # finished no batch for this long.
    worker_stuck_after_s: float = Field(default=60.0, gt=0)
    # Failed token checks (admin or operator token) one client address may make per minute
    # before the query service answers it 429 with Retry-After; 0 turns the throttle off.
    # Ingest has none: write keys are public in web pages, and ingest behind a load balancer
    # sees one address for many clients.
    auth_failures_per_minute: int = Field(default=30, ge=0)
    # The dashboard's live debugger: how many recent events and rejections the query service
    # keeps in memory, and the most it records per second (the rest are counted as skipped).
    debugger_buffer_events: int = Field(default=500, ge=10, le=100_000)
    debugger_max_events_per_s: float = Field(default=200.0, gt=0)
    # How many entries the audit log keeps (the oldest go first); 0 keeps every entry.
    audit_log_max_entries: int = Field(default=0, ge=0)
    # The `profilestream` command: the query API it calls (default: http://query_host:query_port)
    # and the operator token it sends (default: PS_ADMIN_TOKEN).
    query_url: str = ""
    token: SecretStr = SecretStr("")

    log_level: str = "INFO"

    @field_validator("clickhouse_dsn")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> Settings:
        if not self.clickhouse_dsn:
            self.clickhouse_dsn = f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
        if self.mode == "production" and self.clickhouse_dsn.startswith("chdb://"):
            raise ValueError(
                "production mode needs a ClickHouse server: set PS_CLICKHOUSE_DSN to "
                "http(s)://user:password@host:8123/database"
            )
        if not self.write_key_map():
            raise ValueError("PS_WRITE_KEYS names no write key")
        unknown = set(self.write_key_origin_map()) - set(self.write_key_map())
        if unknown:
            raise ValueError(
                f"PS_WRITE_KEY_ORIGINS names {len(unknown)} key(s) that PS_WRITE_KEYS does not"
            )
        dev_source = self.write_key_map().get(DEV_WRITE_KEY)
        if dev_source is not None and not self.source_secrets.get_secret_value().strip():
            # the embedded default: the dev write key's source gets the dev secret too
            self.source_secrets = SecretStr(f"{DEV_SOURCE_SECRET}:{dev_source}")
            self._source_secret_map = None
        if set(self.source_secret_map()) & set(self.write_key_map()):
            raise ValueError(
                "PS_SOURCE_SECRETS holds a write key: a write key is public in a browser, a "
                "source secret must not be"
            )
        strays = set(self.source_secret_map().values()) - set(self.write_key_map().values())
        if strays:
            raise ValueError(
                "PS_SOURCE_SECRETS names a source that no key of PS_WRITE_KEYS has: "
                + ", ".join(sorted(strays))
            )
        unsigned = self.segment_webhook_batched_source_set() - set(
            self.source_secret_map().values()
        )
        if unsigned:
            raise ValueError(
                "PS_SEGMENT_WEBHOOK_BATCHED_SOURCES names a source without a secret in "
                "PS_SOURCE_SECRETS: " + ", ".join(sorted(unsigned))
            )
        rate = self.ingest_rate_limit_events_per_s
        if rate > 0 and self.ingest_rate_limit_burst == 0:
            # Two seconds' worth: room for a client's flush without loosening the long-run rate.
            self.ingest_rate_limit_burst = max(1, math.ceil(2 * rate))
        if self.serve_query_in_materializer is None:
            self.serve_query_in_materializer = self.clickhouse_dsn.startswith("chdb://")
        dev_secrets = (
            self.admin_token.get_secret_value() == DEV_ADMIN_TOKEN
            or DEV_WRITE_KEY in self.write_key_map()
            or DEV_SOURCE_SECRET in self.source_secret_map()
        )
        exposed = not (is_loopback(self.ingest_host) and is_loopback(self.query_host))
        if dev_secrets and (self.mode == "production" or exposed):
            raise ValueError(
                "the embedded default credentials (dev-write-key / dev-admin-token / "
                "dev-source-secret) are only allowed in embedded mode on loopback: set "
                "PS_WRITE_KEYS, PS_ADMIN_TOKEN and PS_SOURCE_SECRETS"
            )
        return self

    def secrets(self) -> list[str]:
        """Every credential an event body could carry by mistake (a page URL with the write key
        in it): what the rejections topic and the debugger replace with `[redacted]`."""
        return [
            *self.write_key_map(),
            *self.source_secret_map(),
            self.admin_token.get_secret_value(),
        ]

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Settings:
        """The settings a process started with environment `env` would read (used by the
        launchers that start services with an environment of their own)."""
        prefix = cls.model_config.get("env_prefix", "")
        return cls.model_validate(
            {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
        )

    # Parsed once: ingest asks for both on every request.
    _write_key_map: dict[str, str] | None = PrivateAttr(default=None)
    _write_key_origin_map: dict[str, frozenset[str]] | None = PrivateAttr(default=None)
    _source_secret_map: dict[str, str] | None = PrivateAttr(default=None)

    def write_key_map(self) -> dict[str, str]:
        """Write key -> source name."""
        if self._write_key_map is None:
            self._write_key_map = self._parse_write_keys()
        return self._write_key_map

    def _parse_write_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        for item in self.write_keys.get_secret_value().split(","):
            item = item.strip()
            if not item:
                continue
            key, _, source = item.partition(":")
            keys[key] = source or f"source-{len(keys) + 1}"
        return keys

    def source_secret_map(self) -> dict[str, str]:
        """Server-side secret -> source name (PS_SOURCE_SECRETS)."""
        if self._source_secret_map is None:
            secrets: dict[str, str] = {}
            for item in self.source_secrets.get_secret_value().split(","):
                secret, separator, source = item.strip().rpartition(":")
                if not item.strip():
                    continue
                if not separator or not secret or not source:
                    raise ValueError("PS_SOURCE_SECRETS: expected secret:source,secret2:source")
                if secrets.get(secret, source) != source:
                    raise ValueError("PS_SOURCE_SECRETS: one secret names two sources")
                secrets[secret] = source
            self._source_secret_map = secrets
        return self._source_secret_map

    def segment_webhook_batched_source_set(self) -> frozenset[str]:
        names = self.segment_webhook_batched_sources.split(",")
        return frozenset(n.strip() for n in names if n.strip())

    def write_key_origin_map(self) -> dict[str, frozenset[str]]:
        """Write key -> the browser origins it may be used from ("*": any); keys not listed
        may be used from any origin."""
        if self._write_key_origin_map is None:
            self._write_key_origin_map = self._parse_write_key_origins()
        return self._write_key_origin_map

    def _parse_write_key_origins(self) -> dict[str, frozenset[str]]:
        origins: dict[str, frozenset[str]] = {}
        for item in self.write_key_origins.get_secret_value().split(";"):
            key, separator, listed = item.strip().partition("=")
            if not key:
                continue
            if not separator:
                raise ValueError("PS_WRITE_KEY_ORIGINS: expected key=origin origin;key2=origin")
            given = listed.split()
            bad = [o for o in given if o != "*" and not ORIGIN.fullmatch(o.lower().rstrip("/"))]
            if bad:
                raise ValueError(
                    f"PS_WRITE_KEY_ORIGINS: {bad[0]!r} is not an origin (scheme://host[:port])"
                )
            origins[key] = frozenset(o if o == "*" else normalized_origin(o) for o in given)
        return origins


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
