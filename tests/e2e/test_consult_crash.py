"""A crash right after the 250 loses nothing: the consult service's process is killed
(SIGKILL) the moment it accepted a message, and a restarted platform processes it."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.concurrency import run_in_threadpool

from services.consult.domain import mail_id_for
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.servers.smtp import free_port

pytestmark = pytest.mark.e2e


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"medcode service consult exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the consult SMTP listener did not start")


def _send_then_kill(port: int, process: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    message = EmailMessage()
    message["From"] = "stranger@example.net"
    message["To"] = "consult@medcode.localhost"
    message["Subject"] = "Kept through a crash?"
    message["Message-ID"] = "<crash@example.net>"
    message.set_content("What is the code for a crash?")
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo()
    client.mail("stranger@example.net")
    client.rcpt("consult@medcode.localhost")
    answer = client.data(message.as_bytes())
    os.kill(process.pid, signal.SIGKILL)  # at once: before any processing could start
    process.wait(30)
    client.close()
    return answer


async def test_a_message_accepted_before_a_kill_9_is_processed_after_restart(
        tmp_path: Path) -> None:
    settings = Settings(mode="embedded", data_dir=tmp_path / "var")
    port = free_port()
    env = {**os.environ, "MEDCODE_MODE": "embedded", "DATA_DIR": str(settings.data_dir),
           "SMTP_PORT": str(port), "PORT": str(free_port())}
    process = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "gateway.cli", "service", "consult"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(_wait_listening, port, process)
        code, reply = await asyncio.to_thread(_send_then_kill, port, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert code == 250, reply
    assert process.returncode == -signal.SIGKILL

    async for _client, platform in gateway(settings):  # the restart
        app = platform.running["consult"].app
        async with asyncio.timeout(60):
            while not (mail := await run_in_threadpool(app.mail, mail_id_for(
                    "<crash@example.net>"))) or not mail.handled:
                await asyncio.sleep(0.1)
        assert mail.refusal == "UNKNOWN_SENDER"
        outbox = settings.data_dir / "outbox"
        async with asyncio.timeout(60):
            while not any(b"stranger@example.net" in p.read_bytes()
                          for p in (outbox.glob("*.eml") if outbox.is_dir() else [])):
                await asyncio.sleep(0.1)
