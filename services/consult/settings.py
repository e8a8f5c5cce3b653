"""The consult product's own settings, read from the environment when it starts."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.shared.settings import SettingsError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ConsultSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    mail_domain: str = "medcode.localhost"  # we take mail for consult@<mail_domain>
    mailbox: str = "consult"
    max_message_bytes: int = 10 * MIB
    max_recipients: int = 20
    max_connections: int = 50
    smtp_timeout_seconds: int = 60
    tls_cert: Path | None = None  # STARTTLS is offered when both are set
    tls_key: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.mailbox}@{self.mail_domain}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsultSettings:
        env = os.environ if env is None else env

        def integer(name: str, default: int, least: int = 1) -> int:
            raw = env.get(name, "")
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
            if value < least:
                raise SettingsError(f"{name} must be at least {least}, not {value}")
            return value

        cert, key = env.get("SMTP_TLS_CERT") or None, env.get("SMTP_TLS_KEY") or None
        if bool(cert) != bool(key):
            raise SettingsError("set both SMTP_TLS_CERT and SMTP_TLS_KEY to offer STARTTLS, "
                                "or neither")
        return cls(
            smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=integer("SMTP_PORT", 2525, least=0),
            mail_domain=(env.get("MEDCODE_MAIL_DOMAIN") or "medcode.localhost").lower(),
            max_message_bytes=integer("SMTP_MAX_MESSAGE_BYTES", 10 * MIB),
            max_recipients=integer("SMTP_MAX_RECIPIENTS", 20),
            max_connections=integer("SMTP_MAX_CONNECTIONS", 50),
            smtp_timeout_seconds=integer("SMTP_TIMEOUT_SECONDS", 60),
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"SMTP_TLS_CERT/SMTP_TLS_KEY cannot be loaded: {exc}") from None
        return context
