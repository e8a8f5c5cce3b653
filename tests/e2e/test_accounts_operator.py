"""Operator commands (`medcode accounts ...`) on the store of a running server, and the
fail-closed start of a service's own API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from gateway import cli
from gateway.bootstrap import Platform
from services.shared.commands import CommandError
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.e2e.helpers import graphql, link_token, mailed

pytestmark = pytest.mark.e2e

REGISTER = """mutation($email: String!, $password: String!) {
  register(input: {email: $email, password: $password}) {
    ... on SessionPayload { token } ... on AuthError { code } } }"""
VIEWER = """{ viewer { email plan emailVerified roles codePageViews { used limit remaining }
              assistantQuestions { used limit remaining } } }"""
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) { ok code } }"


@pytest.fixture
async def served(embedded_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client, _ in gateway(embedded_settings.with_environ(LOGIN_FAILURE_DELAY_MS="0")):
        yield client


def medcode(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `medcode ...` as an operator would, on the server's $DATA_DIR."""
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_set_plan_grant_role_and_show_act_on_the_running_system(
    served: httpx.AsyncClient, embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = await graphql(served, REGISTER, email="Kim@Example.org", password="correct horse 1")
    token = body["data"]["register"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    mail = await mailed(embedded_settings.data_dir / "outbox", "kim@example.org")
    await graphql(served, VERIFY, headers, t=link_token(mail, "/verify-email"))

    def run(*argv: str) -> tuple[int, str, str]:
        return medcode(embedded_settings, monkeypatch, *argv, capsys=capsys)

    code, out, _ = await asyncio.to_thread(run, "accounts", "set-plan", "kim@example.org", "pro")
    assert code == 0 and "kim@example.org is on plan pro" in out and "unlimited" in out
    code, out, _ = await asyncio.to_thread(run, "accounts", "grant-role", "KIM@example.org",
                                           "expert")
    assert code == 0 and "expert" in out
    viewer = (await graphql(served, VIEWER, headers))["data"]["viewer"]
    assert viewer == {"email": "kim@example.org", "plan": "pro", "emailVerified": True,
                      "roles": ["expert"],
                      "codePageViews": {"used": 0, "limit": None, "remaining": None},
                      "assistantQuestions": {"used": 0, "limit": 200, "remaining": 200}}
    code, out, _ = await asyncio.to_thread(run, "accounts", "show", "kim@example.org")
    assert code == 0
    assert "plan:            pro" in out and "(verified)" in out and "expert" in out

    code, _, err = await asyncio.to_thread(run, "accounts", "set-plan", "kim@example.org",
                                           "platinum")
    assert code == 2 and "no plan 'platinum'" in err
    code, _, err = await asyncio.to_thread(run, "accounts", "show", "nobody@example.org")
    assert code == 2 and "no account has the email" in err


def test_a_service_api_fails_closed_without_a_token() -> None:
    dev = Settings()
    assert "development only" in (cli.service_guard(dev) or "")
    assert cli.service_guard(replace(dev, service_token="s3cret")) is None
    for refused in (replace(dev, host="0.0.0.0"), replace(dev, environment="production"),
                    replace(dev, environment="production", host="10.0.0.5")):
        with pytest.raises(CommandError, match="MEDCODE_SERVICE_TOKEN"):
            cli.service_guard(refused)


def test_product_commands_come_from_entry_points() -> None:
    names = {c.name for c in cli.discover_commands()}
    assert {"accounts", "import", "projections"} <= names
    source = (cli.__file__ and open(cli.__file__).read()) or ""
    assert "services.lookup" not in source and "services.accounts" not in source


async def test_a_platform_can_be_opened_for_a_command(embedded_settings: Settings) -> None:
    async with cli.started(embedded_settings) as platform:
        assert isinstance(platform, Platform) and "accounts" in platform.running


def test_medcode_service_refuses_to_start_open_to_the_network(tmp_path: Path) -> None:
    env = {**os.environ, "HOST": "0.0.0.0", "DATA_DIR": str(tmp_path)}
    env.pop("MEDCODE_SERVICE_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "service", "accounts"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "set MEDCODE_SERVICE_TOKEN" in done.stderr
