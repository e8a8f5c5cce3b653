"""The accounts mail policy: accounts events in, messages in the outbox.

It runs as a consumer of this service's own events (services.shared.mail.MailPolicy),
so each mail is recorded with the consumer's checkpoint in one transaction. The events
carry no address and no token: the policy asks the application where the mail goes
(opening the sealed email) and derives the token from the request id and the server
secret (tokens.py). A deleted account gets no mail (its address is unreadable), and a
request superseded by a newer one (a resend) is not mailed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode
from uuid import UUID

from services.accounts.application import RESET, VERIFY, Accounts
from services.accounts.values import MailRequest
from services.shared.envelope import Envelope
from services.shared.mail import MailMessage, message_id_for
from services.shared.threads import run_in_threadpool

SIGNATURE = "-- \nmedcode, the code lookup for medical coders"


class AccountsMail:
    def __init__(self, app: Accounts, site_url: str, domain: str) -> None:
        self.app = app
        self.site_url = site_url.rstrip("/")
        self.domain = domain

    async def compose(self, envelope: Envelope) -> Sequence[MailMessage]:
        kind = envelope.type
        if kind == "EmailVerificationRequested":
            return await self._linked(envelope, VERIFY, "/verify-email",
                                      "Verify your email address for medcode",
                                      "Follow this link to verify your email address and "
                                      "unlock the free plan's code page views:")
        if kind == "PasswordResetRequested":
            return await self._linked(envelope, RESET, "/reset-password",
                                      "Reset your medcode password",
                                      "Someone (we hope you) asked to reset the password of "
                                      "your medcode account. Follow this link to choose a "
                                      "new one; if it was not you, ignore this mail:")
        if kind == "EmailChanged":
            return await self._notice(envelope, "email-changed",
                                      "Your medcode email address was changed",
                                      "The email address of your medcode account was just "
                                      "changed, and this address no longer signs in. If you "
                                      "did not do this, reply to this mail at once.")
        if kind == "PasswordChanged":
            return await self._notice(envelope, "password-changed",
                                      "Your medcode password was changed",
                                      "The password of your medcode account was just "
                                      "changed and every other session signed out. If you "
                                      "did not do this, reset your password now.")
        return []

    async def _request(self, envelope: Envelope, purpose: str,
                       request_id: UUID | None) -> MailRequest | None:
        return await run_in_threadpool(self.app.mail_request, envelope.aggregate_id, purpose,
                                       request_id, envelope.aggregate_version)

    async def _linked(self, envelope: Envelope, purpose: str, path: str, subject: str,
                      intro: str) -> list[MailMessage]:
        request = await self._request(envelope, purpose,
                                      UUID(envelope.payload["request_id"]))
        if request is None or not request.current or request.token is None:
            return []
        link = f"{self.site_url}{path}?{urlencode({'token': request.token})}"
        hours = round(self.app.policy.token_ttl.total_seconds() / 3600)
        text = (f"{intro}\n\n{link}\n\nThe link works once, for {hours} hours.\n\n"
                f"{SIGNATURE}\n")
        html = (f"<p>{escape(intro)}</p>\n<p><a href=\"{escape(link)}\">{escape(link)}</a></p>\n"
                f"<p>The link works once, for {hours} hours.</p>\n")
        return [self._message(envelope, purpose, request.to, subject, text, html)]

    async def _notice(self, envelope: Envelope, purpose: str, subject: str,
                      body: str) -> list[MailMessage]:
        request = await self._request(envelope, purpose, None)
        if request is None:
            return []
        return [self._message(envelope, purpose, request.to, subject,
                              f"{body}\n\n{SIGNATURE}\n", f"<p>{escape(body)}</p>\n")]

    def _message(self, envelope: Envelope, purpose: str, to: str, subject: str, text: str,
                 html: str) -> MailMessage:
        return MailMessage(
            to=to, subject=subject, text=text, html=html,
            message_id=message_id_for(f"{envelope.id}:{purpose}", self.domain),
            headers=(("Auto-Submitted", "auto-generated"),),
        )
