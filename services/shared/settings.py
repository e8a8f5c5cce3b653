"""Settings, read once from the environment at bootstrap (never at import time)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["embedded", "distributed"]
Environment = Literal["development", "production"]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable to fix."""


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "y", "on"}


# Page views each plan grants in total (null = unlimited). Overridden by MEDCODE_PLANS
# (JSON) or MEDCODE_PLANS_FILE: the catalogue is configuration, not code. "guest" and
# "free" must exist: guests start on one, registration moves them to the other.
DEFAULT_PLANS: tuple[tuple[str, int | None], ...] = (("guest", 1), ("free", 6), ("pro", None))


def _plans(env: Mapping[str, str]) -> tuple[tuple[str, int | None], ...]:
    raw, name = env.get("MEDCODE_PLANS"), "MEDCODE_PLANS"
    if not raw and env.get("MEDCODE_PLANS_FILE"):
        name = "MEDCODE_PLANS_FILE"
        try:
            raw = Path(env["MEDCODE_PLANS_FILE"]).read_text()
        except OSError as exc:
            raise SettingsError(f"MEDCODE_PLANS_FILE cannot be read: {exc}") from None
    if not raw:
        return DEFAULT_PLANS
    try:
        data = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a JSON object like {{\"pro\": null}}") from None
    if not isinstance(data, dict) or not {"guest", "free"} <= data.keys():
        raise SettingsError(f"{name} must be a JSON object with at least 'guest' and 'free'")
    for plan, views in data.items():
        if views is not None and (isinstance(views, bool) or not isinstance(views, int)
                                  or views < 0):
            raise SettingsError(f"{name}: views of plan {plan!r} must be a whole number >= 0 "
                                f"or null (unlimited), not {views!r}")
    return tuple((str(plan), views) for plan, views in data.items())


@dataclass(frozen=True)
class Settings:
    mode: Mode = "embedded"
    environment: Environment = "development"
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    postgres_password: str = ""
    postgres_dbname: str = "medcode"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Real Kafka supports idempotent producers; the Tansu test broker does not.
    kafka_idempotence: bool = True
    kafka_topic_prefix: str = "medcode"
    opensearch_url: str = "http://127.0.0.1:9200"
    search_alias: str = "medcode-codes"
    # Recent search answers kept in memory (0 entries: none), and for how long at most.
    search_cache_entries: int = 2048
    search_cache_seconds: int = 60
    # Processes serving HTTP (0: one per CPU core); one of them runs the relays and
    # consumers, so each projection keeps exactly one writer.
    serve_workers: int = 0
    # Hostile-query limits for the public GraphQL API.
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 2000
    max_request_bytes: int = 64 * 1024
    # MEDCODE_<PRODUCT>_URL: where a product runs as its own process (distributed).
    service_urls: tuple[tuple[str, str], ...] = ()
    # Shared secret between the gateway and the services' own APIs (distributed mode).
    service_token: str | None = None
    # Accounts: sessions, the guest-session cap (0 = no cap) and login throttling.
    session_ttl_seconds: int = 30 * 24 * 3600
    guest_sessions_per_address_per_day: int = 20
    login_max_failures: int = 5
    login_lock_seconds: int = 60  # doubles with each further lock
    login_lock_max_seconds: int = 3600
    login_failure_delay_ms: int = 200  # per recent failure, before answering
    plans: tuple[tuple[str, int | None], ...] = DEFAULT_PLANS

    def service_url(self, product: str) -> str | None:
        return dict(self.service_urls).get(product)

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def postgres_dsn(self) -> str:
        password = f":{self.postgres_password}" if self.postgres_password else ""
        return (
            f"postgresql://{self.postgres_user}{password}@{self.postgres_host}:"
            f"{self.postgres_port}/{self.postgres_dbname}"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        mode = env.get("MEDCODE_MODE", "embedded")
        if mode not in ("embedded", "distributed"):
            raise SettingsError(f"MEDCODE_MODE must be 'embedded' or 'distributed', not {mode!r}")
        environment = env.get("MEDCODE_ENV", "development")
        if environment not in ("development", "production"):
            raise SettingsError(
                f"MEDCODE_ENV must be 'development' or 'production', not {environment!r}"
            )

        def integer(name: str, default: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None

        return cls(
            mode=mode,  # type: ignore[arg-type]
            environment=environment,  # type: ignore[arg-type]
            data_dir=Path(env.get("DATA_DIR", "var")),
            host=env.get("HOST", "127.0.0.1"),
            port=integer("PORT", 8000),
            postgres_host=env.get("POSTGRES_HOST", "127.0.0.1"),
            postgres_port=integer("POSTGRES_PORT", 5432),
            postgres_user=env.get("POSTGRES_USER", "postgres"),
            postgres_password=env.get("POSTGRES_PASSWORD", ""),
            postgres_dbname=env.get("POSTGRES_DBNAME", "medcode"),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            kafka_idempotence=_flag(env.get("KAFKA_IDEMPOTENCE", "true")),
            kafka_topic_prefix=env.get("KAFKA_TOPIC_PREFIX", "medcode"),
            opensearch_url=env.get("OPENSEARCH_URL", "http://127.0.0.1:9200"),
            search_alias=env.get("SEARCH_ALIAS", "medcode-codes"),
            search_cache_entries=integer("SEARCH_CACHE_ENTRIES", 2048),
            search_cache_seconds=integer("SEARCH_CACHE_SECONDS", 60),
            serve_workers=integer("MEDCODE_WORKERS", 0),
            graphql_max_depth=integer("GRAPHQL_MAX_DEPTH", 12),
            graphql_max_aliases=integer("GRAPHQL_MAX_ALIASES", 30),
            graphql_max_tokens=integer("GRAPHQL_MAX_TOKENS", 2000),
            max_request_bytes=integer("MAX_REQUEST_BYTES", 64 * 1024),
            service_token=env.get("MEDCODE_SERVICE_TOKEN") or None,
            service_urls=tuple(
                (key[len("MEDCODE_") : -len("_URL")].lower(), value)
                for key, value in sorted(env.items())
                if key.startswith("MEDCODE_") and key.endswith("_URL") and value
            ),
            session_ttl_seconds=integer("SESSION_TTL_SECONDS", 30 * 24 * 3600),
            guest_sessions_per_address_per_day=integer("GUEST_SESSIONS_PER_ADDRESS_PER_DAY", 20),
            login_max_failures=integer("LOGIN_MAX_FAILURES", 5),
            login_lock_seconds=integer("LOGIN_LOCK_SECONDS", 60),
            login_lock_max_seconds=integer("LOGIN_LOCK_MAX_SECONDS", 3600),
            login_failure_delay_ms=integer("LOGIN_FAILURE_DELAY_MS", 200),
            plans=_plans(env),
        )

    def event_store_env(self, service: str) -> dict[str, str]:
        """eventsourcing settings for one service's Application in this mode."""
        if self.mode == "embedded":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / f"{service}.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        return {
            "PERSISTENCE_MODULE": "services.shared.postgres_recorder:Factory",
            "POSTGRES_DBNAME": self.postgres_dbname,
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": str(self.postgres_port),
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.postgres_password,
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
            "CREATE_TABLE": "y",
        }
