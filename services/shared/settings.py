"""Settings, read once from the environment at bootstrap (never at import time)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

Mode = Literal["embedded", "distributed"]
Environment = Literal["development", "production"]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable to fix."""


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "y", "on"}


def integer_setting(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number variable (``default`` when unset or empty); products use it too."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _tristate(name: str, value: str) -> bool | None:
    """auto (None), or a flag."""
    value = value.strip().lower()
    if value in ("", "auto"):
        return None
    if value in {"1", "true", "yes", "y", "on", "0", "false", "no", "n", "off"}:
        return _flag(value)
    raise SettingsError(f"{name} must be auto, true or false, not {value!r}")


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (or single addresses), checked and normalised."""
    found = []
    for part in raw.replace(" ", ",").split(","):
        if not part:
            continue
        try:
            found.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(f"MEDCODE_TRUSTED_PROXIES: {part!r} is not an address or "
                                "CIDR like 10.0.0.0/8") from None
    return tuple(found)


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
    # Relays and consumers: restart backoff, tries before an event is poison, and when
    # /readyz says "not ready" (consecutive failures; lag in log positions, 0 = never).
    worker_backoff_initial_ms: int = 500
    worker_backoff_max_ms: int = 30_000
    consumer_max_attempts: int = 5
    ready_max_failures: int = 3
    ready_max_lag: int = 0
    relay_verify_seconds: int = 60  # an idle relay checks the bus still holds the log
    # The variables these settings were read from: each product reads its own settings
    # from them (services/<product>/settings.py), so a new product edits nothing here.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # Outgoing mail (services/shared/mail): SMTP_RELAY host:port, or .eml files under
    # $DATA_DIR/outbox/ when unset. STARTTLS: None = when offered, True = required.
    smtp_relay: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool | None = None
    smtp_ca_file: str | None = None  # a private CA the relay's certificate is signed by
    mail_from: str = "medcode <no-reply@medcode.localhost>"
    # Where people reach the site (links in mail); default http://HOST:PORT.
    public_url: str | None = None
    # CIDRs of the proxies in front of the gateway: only their X-Forwarded-For is read.
    trusted_proxies: tuple[str, ...] = ()
    # The server secret tokens are derived from (MEDCODE_SECRET_KEY); see secret().
    secret_key: str | None = None

    @property
    def smtp_relay_address(self) -> tuple[str, int]:
        host, _, port = (self.smtp_relay or "").rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"SMTP_RELAY must be host:port, not {self.smtp_relay!r}")
        return host.strip("[]"), int(port)

    @property
    def site_url(self) -> str:
        """The public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def secret(self) -> bytes:
        """The server secret: MEDCODE_SECRET_KEY, or in development a random key kept in
        $DATA_DIR/secret.key (so tokens mailed before a restart still work)."""
        if self.secret_key:
            return self.secret_key.encode()
        if not self.development:
            raise SettingsError("set MEDCODE_SECRET_KEY (e.g. `python -c 'import secrets; "
                                "print(secrets.token_urlsafe(32))'`): tokens are derived "
                                "from it")
        path = self.data_dir / "secret.key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_urlsafe(32).encode())
        return path.read_bytes().strip()

    def with_environ(self, **values: str) -> Settings:
        """These settings with more variables, for the products' own settings to read
        (e.g. a test's ``settings.with_environ(LOGIN_FAILURE_DELAY_MS="0")``)."""
        return replace(self, environ={**self.environ, **values})

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
            return integer_setting(env, name, default)

        settings = cls(
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
            worker_backoff_initial_ms=integer("WORKER_BACKOFF_INITIAL_MS", 500),
            worker_backoff_max_ms=integer("WORKER_BACKOFF_MAX_MS", 30_000),
            consumer_max_attempts=max(integer("CONSUMER_MAX_ATTEMPTS", 5), 1),
            ready_max_failures=max(integer("READY_MAX_FAILURES", 3), 1),
            ready_max_lag=integer("READY_MAX_LAG", 0),
            relay_verify_seconds=integer("RELAY_VERIFY_SECONDS", 60),
            environ=dict(env),
            smtp_relay=env.get("SMTP_RELAY") or None,
            smtp_username=env.get("SMTP_USERNAME") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_ca_file=env.get("SMTP_CA_FILE") or None,
            smtp_starttls=_tristate("SMTP_STARTTLS", env.get("SMTP_STARTTLS", "auto")),
            mail_from=env.get("MEDCODE_MAIL_FROM") or "medcode <no-reply@medcode.localhost>",
            public_url=env.get("MEDCODE_PUBLIC_URL") or None,
            trusted_proxies=_networks(env.get("MEDCODE_TRUSTED_PROXIES", "")),
            secret_key=env.get("MEDCODE_SECRET_KEY") or None,
        )
        if settings.smtp_relay:
            settings.smtp_relay_address  # noqa: B018 - fails early when malformed
        return settings

    def event_store_env(self, service: str) -> dict[str, str]:
        """eventsourcing settings for one service's Application in this mode."""
        # Stores each event's trace id with it, for the envelope's correlation_id.
        mapper = {"MAPPER_TOPIC": "services.shared.tracing:CorrelatedMapper"}
        if self.mode == "embedded":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                **mapper,
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / f"{service}.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        return {
            **mapper,
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
