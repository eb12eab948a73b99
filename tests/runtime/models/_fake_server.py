"""A local HTTP server on 127.0.0.1 that answers model requests from a script.

It records every request it receives (path, headers, JSON body) and answers each with the
next scripted item, rendered by a protocol module (`_openai_protocol`, `_anthropic_protocol`)
as that provider's API would: a JSON body, server-sent events, an error status with its
headers, or a dropped connection. stdlib `http.server` in a thread: real TCP, no mocks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(kw_only=True)
class Answer:
    """What the fake model answers: text and/or tool calls, and the tokens it used."""

    text: str = ""
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(call id, tool name, arguments as raw JSON text): sent as the model wrote them."""
    input_tokens: int = 11
    """All input tokens, cached ones included (each protocol reports them its way)."""
    output_tokens: int = 7
    cached_tokens: int = 0
    pause_after: int | None = None
    """Streamed: wait for the server's `gate` after this many events."""
    complete: bool = True
    """Streamed: False cuts the stream short (no final event)."""


@dataclass(kw_only=True)
class Failure:
    """An HTTP error answer."""

    status: int
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class StreamError:
    """An error event inside a 200 stream (Anthropic's way of reporting overload mid-stream)."""

    kind: str


class Drop:
    """Close the connection without answering."""


Answerable = Answer | Failure | StreamError
"""What a protocol renders (a `Drop` the server does itself)."""
ScriptItem = Answerable | Drop


@dataclass(kw_only=True)
class Reply:
    """What the handler writes: a status, headers, and a JSON body or server-sent events."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None  # Any: the protocol's JSON
    events: list[str] | None = None
    pause_after: int | None = None


@dataclass(kw_only=True)
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # Any: the JSON the SDK sent


Render = Callable[[str, Any, Answerable], Reply]


class FakeServer:
    """The server: `script` its answers, read `received`, use `url` as the base URL."""

    def __init__(self, render: Render) -> None:
        self.render = render
        self.script: list[ScriptItem] = []
        self.received: list[Received] = []
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]  # the handler finds it here
        # A short poll: shutdown() waits for the loop to look, 0.5 s by default.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, *items: ScriptItem) -> None:
        """Append answers to the script."""
        self.script.extend(items)

    def take(self, path: str, headers: dict[str, str], body: Any) -> Reply | None:
        """Record a request and render the next scripted answer (None: drop the connection)."""
        with self._lock:
            self.received.append(Received(path=path, headers=headers, body=body))
            if not self.script:
                return Reply(status=500, json_body={"error": {"message": "script exhausted"}})
            item = self.script.pop(0)
        return None if isinstance(item, Drop) else self.render(path, body, item)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]  # set by FakeServer
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = fake.take(self.path, headers, body)
        if reply is None:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.events is None:
            data = json.dumps(reply.json_body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        # A stream has no length: it ends when the connection closes.
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for index, event in enumerate(reply.events):
            if index == reply.pause_after:
                fake.gate.wait(10)
            self.wfile.write(event.encode())
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def words(text: str) -> list[str]:
    """`text` in streamed pieces: each word with the space after it."""
    pieces: list[str] = []
    for word in text.split(" "):
        if pieces:
            pieces[-1] += " "
        pieces.append(word)
    return [piece for piece in pieces if piece]


def pieces_of(text: str) -> list[str]:
    """`text` in two halves, as a stream splits a tool call's JSON arguments."""
    middle = len(text) // 2
    return [piece for piece in (text[:middle], text[middle:]) if piece]
