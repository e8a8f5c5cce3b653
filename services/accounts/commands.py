"""``medcode accounts ...``: the support desk's commands, on the running system's store.

They open the accounts Application on the store the settings name (embedded: the same
``$DATA_DIR`` as ``medcode serve``; distributed: the same PostgreSQL database), so a
change is an event like any other and the running server sees it on its next request.
"""

from __future__ import annotations

import argparse

from services.accounts.application import Accounts
from services.accounts.domain import ROLES
from services.accounts.failures import AccountsFailure
from services.accounts.runtime import open_accounts
from services.accounts.values import ViewerInfo
from services.shared.commands import Command, CommandContext, CommandError
from services.shared.threads import run_in_threadpool


def _views(info: ViewerInfo) -> str:
    limit = "unlimited" if info.limit is None else str(info.limit)
    return f"{info.used} of {limit} code-page views used"


def describe(info: ViewerInfo) -> str:
    questions = info.assistant_questions
    limit = "unlimited" if questions.limit is None else str(questions.limit)
    return "\n".join([
        f"email:           {info.email} ({'verified' if info.email_verified else 'unverified'})",
        f"id:              {info.id}",
        f"plan:            {info.plan}",
        f"roles:           {', '.join(info.roles) or '-'}",
        f"code pages:      {_views(info)}",
        f"assistant today: {questions.used} of {limit} questions",
    ])


def _member(app: Accounts, email: str) -> ViewerInfo:
    found = app.find_by_email(email)
    if found is None or found.id is None:
        raise CommandError(f"no account has the email {email!r}")
    return found


def act(app: Accounts, args: argparse.Namespace) -> str:
    """One verb, run in a worker thread (the Application is synchronous)."""
    verb = args.accounts_command
    if verb == "unlock":
        unlocked = app.unlock_account(args.email)
        return f"{args.email}: " + ("login lock lifted" if unlocked else "was not locked")
    member = _member(app, args.email)
    assert member.id is not None
    if verb == "show":
        return describe(member)
    if verb == "set-plan":
        info = app.change_plan(member.id, args.plan, "operator")
        return f"{info.email} is on plan {info.plan} ({_views(info)})"
    if verb == "grant-role":
        info = app.grant_role(member.id, args.role)
        return f"{info.email} has the roles: {', '.join(info.roles)}"
    if verb == "revoke-role":
        info = app.revoke_role(member.id, args.role)
        return f"{info.email} has the roles: {', '.join(info.roles) or '-'}"
    raise CommandError(f"unknown command {verb!r}")


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="accounts_command", required=True)
    show = verbs.add_parser("show", help="an account's plan, roles, quotas")
    show.add_argument("email")
    plan = verbs.add_parser("set-plan", help="move a member to a plan of the catalogue")
    plan.add_argument("email")
    plan.add_argument("plan")
    for verb, words in (("grant-role", "give a member a role"),
                        ("revoke-role", "take a role away")):
        role = verbs.add_parser(verb, help=words)
        role.add_argument("email")
        role.add_argument("role", choices=ROLES)
    unlock = verbs.add_parser("unlock", help="lift a login lock early")
    unlock.add_argument("email")


async def run(context: CommandContext, args: argparse.Namespace) -> str:
    app = open_accounts(context.settings)
    try:
        return await run_in_threadpool(act, app, args)
    except AccountsFailure as failure:
        raise CommandError(str(failure)) from None
    finally:
        app.close()


commands = [Command("accounts", "accounts: show, set-plan, grant-role, revoke-role, unlock",
                    configure, run)]
