"""Starting the consult product in either mode, from the shared infrastructure."""

from __future__ import annotations

from services.consult.application import Consults
from services.consult.assisted import AssistantAnswerer
from services.consult.client import HttpConsults, LocalConsults
from services.consult.events import CATALOGUE
from services.consult.intake import Answerer, MailIntake, SearchAnswerer
from services.consult.mailing import ConsultMail
from services.consult.members import AccountsMembers
from services.consult.metrics import QueueGauge
from services.consult.projections import IntakeProjection, mail_policy
from services.consult.settings import ConsultSettings
from services.consult.smtp import InboundServer
from services.shared.consumer import Consumer
from services.shared.product import Infrastructure, Running


def answerer_for(infra: Infrastructure) -> Answerer:
    """CasePilot through its client when it is installed; else the top search results."""
    search = SearchAnswerer(infra.client("lookup"))
    if "assistant" not in infra.products:
        return search
    return AssistantAnswerer(infra.client("assistant"), search)


async def start(infra: Infrastructure) -> Running:
    settings = infra.settings
    url = settings.service_url("consult")
    if url:
        remote = HttpConsults(url, token=settings.service_token)
        return Running(client=remote, closers=[remote.close_client])
    own = ConsultSettings.from_env()
    app = Consults(env=settings.event_store_env("consult"), mail_domain=own.mail_domain)
    members = AccountsMembers(infra.client("accounts"))
    answerer = answerer_for(infra)
    intake = MailIntake(app, members, answerer)
    server = InboundServer(own, intake.store)
    overdue = QueueGauge(app)
    consumers = [Consumer(IntakeProjection(intake), infra.bus, CATALOGUE.source)]
    if infra.mail is not None:
        composer = ConsultMail(app, reply_to=own.address, site_url=settings.site_url)
        consumers.append(Consumer(mail_policy(infra.mail.outbox, composer), infra.bus,
                                  CATALOGUE.source))
    return Running(client=LocalConsults(app, members, answerer), app=app, catalogue=CATALOGUE,
                   consumers=consumers, serving=[server.serve, overdue.run])
