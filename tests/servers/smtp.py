"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping what it receives.

Optionally it asks for credentials, offers STARTTLS with a self-signed certificate
(``ca_file`` is what a client must trust), or refuses chosen recipients with a 550.
``stop()``/``start()`` simulate a relay outage on the same port.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    port: int = field(default_factory=free_port)
    credentials: tuple[str, str] | None = None
    tls_dir: Path | None = None  # write a self-signed certificate there and offer STARTTLS
    refuse: set[str] = field(default_factory=set)  # recipients answered with 550
    received: list[Received] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        assert self.tls_dir is not None
        return self.tls_dir / "cert.pem"

    @property
    def host_port(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {}
        handler = _Handler(self)
        if self.credentials is not None:
            kwargs.update(authenticator=handler.authenticate, auth_required=True,
                          auth_require_tls=self.tls_dir is not None)
        if self.tls_dir is not None:
            kwargs.update(tls_context=self._tls_context(), require_starttls=True)
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port,
                                      server_hostname="localhost", **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [r.message for r in self.received]

    def _tls_context(self) -> ssl.SSLContext:
        assert self.tls_dir is not None
        key_path = self.tls_dir / "key.pem"
        if not self.ca_file.exists():
            _self_signed(self.ca_file, key_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, key_path)
        return context


class _Handler:
    """aiosmtpd's handler (kept apart: aiosmtpd inspects every attribute of it)."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address.lower() in self.sink.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        with self.sink._lock:
            self.sink.received.append(Received(
                envelope.mail_from, list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
                session.ssl is not None, login))
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.sink.credentials is not None:
            given = (auth_data.login.decode(), auth_data.password.decode())
            if given == self.sink.credentials:
                return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)


def _self_signed(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(_loopback())]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


def _loopback() -> Any:
    import ipaddress

    return ipaddress.ip_address("127.0.0.1")
