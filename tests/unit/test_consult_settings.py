"""The consult product's own settings: where it listens, whose mail it takes, its limits,
and STARTTLS only with a certificate and key that load."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.consult.settings import MIB, ConsultSettings
from services.shared.settings import SettingsError
from tests.servers.smtp import _self_signed


def test_defaults_listen_on_loopback_2525_for_the_consult_mailbox() -> None:
    settings = ConsultSettings.from_env({})
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 2525)
    assert settings.address == "consult@medcode.localhost"
    assert (settings.max_message_bytes, settings.max_recipients, settings.max_connections,
            settings.smtp_timeout_seconds) == (10 * MIB, 20, 50, 60)
    assert settings.tls_context() is None  # no certificate: no STARTTLS


def test_the_environment_sets_the_address_and_limits() -> None:
    settings = ConsultSettings.from_env({
        "SMTP_HOST": "0.0.0.0", "SMTP_PORT": "25", "MEDCODE_MAIL_DOMAIN": "Coders.Example",
        "SMTP_MAX_MESSAGE_BYTES": "1000", "SMTP_MAX_RECIPIENTS": "2",
        "SMTP_MAX_CONNECTIONS": "5", "SMTP_TIMEOUT_SECONDS": "9"})
    assert (settings.smtp_host, settings.smtp_port, settings.address) == (
        "0.0.0.0", 25, "consult@coders.example")
    assert (settings.max_message_bytes, settings.max_recipients, settings.max_connections,
            settings.smtp_timeout_seconds) == (1000, 2, 5, 9)


@pytest.mark.parametrize(("env", "says"), [
    ({"SMTP_MAX_RECIPIENTS": "many"}, "SMTP_MAX_RECIPIENTS must be a whole number"),
    ({"SMTP_MAX_CONNECTIONS": "0"}, "SMTP_MAX_CONNECTIONS must be at least 1"),
    ({"SMTP_TLS_CERT": "/etc/cert.pem"}, "set both SMTP_TLS_CERT and SMTP_TLS_KEY"),
])
def test_bad_settings_are_refused_with_their_name(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        ConsultSettings.from_env(env)


def test_starttls_needs_a_certificate_that_loads(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _self_signed(cert, key)
    settings = ConsultSettings.from_env({"SMTP_TLS_CERT": str(cert), "SMTP_TLS_KEY": str(key)})
    assert settings.tls_context() is not None
    broken = ConsultSettings.from_env({"SMTP_TLS_CERT": str(key), "SMTP_TLS_KEY": str(cert)})
    with pytest.raises(SettingsError, match="cannot be loaded"):
        broken.tls_context()
