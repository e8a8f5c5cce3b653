"""A scripted OpenAI-compatible chat-completions server for tests: real HTTP and JSON.

Each POST /v1/chat/completions takes the next step of the script: a reply (JSON, or a
stream of server-sent events when the request asks for one), a delay, an HTTP error or a
body that is not JSON. Requests are kept for the test to read.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Step:
    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay: float = 0.0
    status: int = 200
    raw: str | None = None  # a body sent as is (malformed replies)


def call(name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return name, arguments


@dataclass
class ChatServer:
    url: str
    script: list[Step]
    requests: list[dict[str, Any]]
    headers: list[dict[str, str]]


def _message(step: Step) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.content or None}
    if step.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(step.tool_calls)]
    return message


def _events(step: Step) -> list[str]:
    """The reply as OpenAI streams it: content in pieces, each tool call's arguments
    split across chunks."""
    chunks: list[dict[str, Any]] = []
    for i, (name, args) in enumerate(step.tool_calls):
        text = json.dumps(args)
        half = len(text) // 2
        chunks.append({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                       "function": {"name": name, "arguments": text[:half]}}]})
        chunks.append({"tool_calls": [{"index": i, "function": {"arguments": text[half:]}}]})
    words = step.content.split(" ")
    for j, word in enumerate(words):
        chunks.append({"content": word + (" " if j < len(words) - 1 else "")})
    lines = [f"data: {json.dumps({'choices': [{'index': 0, 'delta': c}]})}\n\n" for c in chunks]
    return [*lines, "data: [DONE]\n\n"]


@asynccontextmanager
async def chat_server(script: list[Step]) -> AsyncIterator[ChatServer]:
    requests: list[dict[str, Any]] = []
    headers: list[dict[str, str]] = []

    async def complete(request: Request) -> Response:
        body = await request.json()
        requests.append(body)
        headers.append(dict(request.headers))
        step = script.pop(0) if script else Step(status=500)
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.raw is not None:
            return Response(step.raw, status_code=step.status, media_type="application/json")
        if step.status != 200:
            return JSONResponse({"error": {"message": "scripted failure"}},
                                status_code=step.status)
        if body.get("stream"):
            async def stream() -> AsyncIterator[str]:
                for event in _events(step):
                    yield event

            return StreamingResponse(stream(), media_type="text/event-stream")
        return JSONResponse({"id": "chatcmpl-test", "object": "chat.completion",
                             "choices": [{"index": 0, "message": _message(step),
                                          "finish_reason": "stop"}]})

    app = Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield ChatServer(f"http://127.0.0.1:{port}/v1", script, requests, headers)
    finally:
        server.should_exit = True
        await task
