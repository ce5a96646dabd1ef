"""A local OpenAI-compatible HTTP server for tests: the real `openai` client talks to it.

Each POST /v1/chat/completions takes the next scripted action: an answer, an HTTP error
status (whose message may echo the caller's API key, as some servers do: "{key}" in it
stands for the key of the request's Authorization header), a raw body (not JSON, not a
chat completion), or a hang longer than the client's timeout. Requests, their bodies and
the peak number of requests in flight are recorded for the assertions.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Action:
    kind: str  # "answer" | "status" | "raw" | "hang"
    content: str = ""
    status: int = 200
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""  # "status": the error message ("{key}": the caller's key)
    body: bytes = b""  # "raw": sent as it is


def answer(content: str) -> Action:
    return Action("answer", content=content)


def status(code: int, message: str = "", **headers: str) -> Action:
    return Action("status", status=code, headers=headers, message=message)


def raw(body: bytes, code: int = 200) -> Action:
    return Action("raw", status=code, body=body)


def hang(seconds: float) -> Action:
    return Action("hang", seconds=seconds)


class FakeOpenAI:
    """Start with `with FakeOpenAI() as server:`; `server.base_url` goes to the client."""

    def __init__(self, default: Callable[[dict[str, Any]], Action] | None = None) -> None:
        self.script: deque[Action] = deque()
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict[str, Any]) -> Action:
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.default is None:
            return status(500)
        return self.default(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    action = server._next(body)
                    if action.kind == "hang":
                        time.sleep(action.seconds)
                        action = status(504)
                    if action.kind == "raw":
                        payload = action.body
                        self.send_response(action.status)
                    elif action.kind == "status":
                        key = self.headers.get("authorization", "").removeprefix("Bearer ")
                        message = (action.message or f"scripted {action.status}").replace(
                            "{key}", key
                        )
                        payload = json.dumps(
                            {"error": {"message": message, "type": "test", "key": key}}
                        ).encode()
                        self.send_response(action.status)
                        for k, v in action.headers.items():
                            self.send_header(k.replace("_", "-"), v.replace("{key}", key))
                    else:
                        payload = json.dumps(
                            {
                                "id": "chatcmpl-test",
                                "object": "chat.completion",
                                "created": 0,
                                "model": body.get("model", "test"),
                                "choices": [
                                    {
                                        "index": 0,
                                        "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": action.content},
                                    }
                                ],
                                "usage": {
                                    "prompt_tokens": 100,
                                    "completion_tokens": 50,
                                    "total_tokens": 150,
                                },
                            }
                        ).encode()
                        self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    # the client may have given up (timeout test)
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(payload)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        return Handler
