"""Configuration from the environment, read once. Every name has a sane local default."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache

from clickstream.addresses import Network, parse_networks
from clickstream.aggregates import Goal


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Settings:
    region: str
    stream_name: str
    aggregates_table: str
    archive_bucket: str
    dead_letter_queue: str
    max_put_attempts: int
    keys_table: str = "clickstream-keys"
    # How long a key lookup (found or not) is trusted by a warm Lambda before DynamoDB is
    # asked again: a revoked key stops working within this many seconds.
    key_cache_seconds: float = 60.0
    # Read endpoints: "apikey" (X-Api-Key, hashed in the keys table; the local stack) or
    # "cognito" (API Gateway's Cognito user-pool authorizer; AWS stages).
    read_auth: str = "apikey"
    cognito_user_pool_arn: str = ""
    # Cognito stages: read routes also need an API Gateway usage-plan key in "x-api-key"
    # (per-client rate limits, see the README); opted into per stage.
    usage_plan_key_required: bool = False
    # Browser origins allowed to call the API (CORS); "*" allows any origin.
    cors_origins: tuple[str, ...] = ("*",)
    # Event timestamps older than this are rejected: 10 years by default, because the
    # systems this replaces send history unchanged; a stage without imports can use 7.
    max_event_age_days: float = 3650.0
    # A MaxMind-format database (GeoLite2-City.mmdb) to place visitors by address when
    # neither the payload nor the CDN's headers say where they are; none by default.
    geoip_database: str = ""
    # Secret behind the daily salt of anonymous visitor hashes (IP + user agent).
    visitor_salt_secret: str = "clickstream-local"
    # Goals beyond the automatic ones (every event type but page views), e.g. a property
    # filter: [{"name": "Pro signup", "event_type": "signup", "properties": {"plan": "pro"}}]
    goals: tuple[Goal, ...] = ()
    # Proxies whose X-Forwarded-For entries are believed (e.g. CloudFront's ranges, when a
    # distribution is in front of the API); none by default: the connection's address counts.
    trusted_proxies: tuple[Network, ...] = ()
    # GraphQL introspection (GraphiQL's schema explorer): on by default, off on AWS stages
    # unless `make deploy GRAPHQL_INTROSPECTION=true`.
    graphql_introspection: bool = True
    # Asynchronous jobs (exports, erasures): their state and partition locks, and their queue.
    jobs_table: str = "clickstream-jobs"
    jobs_queue: str = "clickstream-jobs"
    # An erasure's last sweep waits this long after its marker: longer than any archiver
    # invocation can run (its Lambda timeout, 60 s, plus a margin), so every batch that read
    # the markers before the erasure has landed by then.
    erasure_settle_s: float = 120.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
            stream_name=_env("CLICKSTREAM_STREAM_NAME", "clickstream-events"),
            aggregates_table=_env("CLICKSTREAM_AGGREGATES_TABLE", "clickstream-aggregates"),
            archive_bucket=_env("CLICKSTREAM_ARCHIVE_BUCKET", "clickstream-archive"),
            dead_letter_queue=_env("CLICKSTREAM_DLQ_NAME", "clickstream-dlq"),
            max_put_attempts=int(_env("CLICKSTREAM_PUT_ATTEMPTS", "5")),
            keys_table=_env("CLICKSTREAM_KEYS_TABLE", "clickstream-keys"),
            key_cache_seconds=float(_env("CLICKSTREAM_KEY_CACHE_S", "60")),
            read_auth=_env("CLICKSTREAM_READ_AUTH", "apikey").strip().lower(),
            cognito_user_pool_arn=_env("CLICKSTREAM_COGNITO_USER_POOL_ARN", ""),
            usage_plan_key_required=_env("CLICKSTREAM_USAGE_PLAN_KEY_REQUIRED", "") == "true",
            cors_origins=parse_origins(
                _env("CLICKSTREAM_CORS_ORIGINS", _env("CLICKSTREAM_CORS_ORIGIN", "*"))
            ),
            max_event_age_days=float(_env("CLICKSTREAM_MAX_EVENT_AGE_DAYS", "3650")),
            geoip_database=_env("CLICKSTREAM_GEOIP_DATABASE", ""),
            visitor_salt_secret=_env("CLICKSTREAM_VISITOR_SALT", "clickstream-local"),
            goals=parse_goals(_env("CLICKSTREAM_GOALS", "[]")),
            trusted_proxies=parse_networks(_env("CLICKSTREAM_TRUSTED_PROXIES", "")),
            graphql_introspection=parse_flag(
                "CLICKSTREAM_GRAPHQL_INTROSPECTION",
                _env("CLICKSTREAM_GRAPHQL_INTROSPECTION", "true"),
            ),
            jobs_table=_env("CLICKSTREAM_JOBS_TABLE", "clickstream-jobs"),
            jobs_queue=_env("CLICKSTREAM_JOBS_QUEUE", "clickstream-jobs"),
            erasure_settle_s=float(_env("CLICKSTREAM_ERASURE_SETTLE_S", "120")),
        )


def parse_goals(raw: str) -> tuple[Goal, ...]:
    """``CLICKSTREAM_GOALS`` (a JSON list) as goals; a malformed list fails at start-up."""
    try:
        listed = json.loads(raw)
        return tuple(
            Goal(str(g["name"]), str(g["event_type"]), dict(g.get("properties") or {}))
            for g in listed
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"CLICKSTREAM_GOALS is not a list of goals: {exc}") from exc


def parse_flag(name: str, raw: str) -> bool:
    """``true``/``false`` (also 1/0, on/off); anything else fails at start-up, naming ``name``."""
    value = raw.strip().lower()
    if value in ("true", "1", "on", "yes"):
        return True
    if value in ("false", "0", "off", "no"):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def parse_origins(raw: str) -> tuple[str, ...]:
    """``"https://a.example, https://b.example"`` -> the origins, without trailing slashes."""
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    return origins or ("*",)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
