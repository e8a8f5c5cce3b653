"""Starting the accounts product in either mode, from the shared infrastructure."""

from __future__ import annotations

from services.accounts.application import Accounts
from services.accounts.billing import billing_routes
from services.accounts.client import AccountsClient, HttpAccounts, LocalAccounts
from services.accounts.events import CATALOGUE
from services.accounts.mail import AccountsMail
from services.accounts.policy import AccountsPolicy
from services.accounts.settings import AccountsSettings
from services.shared.consumer import Consumer
from services.shared.mail import MailPolicy
from services.shared.product import Infrastructure, Running
from services.shared.settings import Settings


def open_accounts(settings: Settings, accounts: AccountsSettings | None = None) -> Accounts:
    """The Application on this mode's store (the server's, or an operator command's)."""
    accounts = accounts or AccountsSettings.from_env(settings.environ)
    return Accounts(env=settings.event_store_env("accounts"),
                    policy=AccountsPolicy.from_settings(accounts),
                    secret=settings.secret())


async def start(infra: Infrastructure) -> Running:
    settings = infra.settings
    accounts = AccountsSettings.from_env(settings.environ)
    url = settings.service_url("accounts")
    client: AccountsClient
    if url:
        remote = HttpAccounts(url, token=settings.service_token)
        return Running(client=remote, closers=[remote.close],
                       routes=billing_routes(remote, accounts))
    app = open_accounts(settings, accounts)
    client = LocalAccounts(app)
    consumers = []
    if infra.mail is not None:
        mail = AccountsMail(app, settings.site_url, infra.mail.domain)
        consumers.append(Consumer(MailPolicy("accounts-mail", infra.mail.outbox, mail.compose),
                                  infra.bus, CATALOGUE.source))
    return Running(client=client, app=app, catalogue=CATALOGUE, consumers=consumers,
                   routes=billing_routes(client, accounts))
