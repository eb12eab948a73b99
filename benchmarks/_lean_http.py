"""A minimal HTTP/1.1 client for the load generator of `server.py`: POST, keep-alive, read all.

Written by hand, not httpx: the client shares the machine's two cores with the server it
measures, and httpx spends about 0.75 ms of CPU per request on its models and transports,
most of a core at 1,000 runs/s. This one writes the request bytes and reads the answer off
an asyncio stream: a fixed-length body or a chunked one (a Server-Sent Events stream),
nothing else (no redirects, no compression, no TLS). What the benchmark needs to judge an
answer, the status and the body, comes back whole.
"""

from __future__ import annotations

import asyncio


class LeanConnection:
    """One keep-alive HTTP/1.1 connection to `host:port`; reconnects when the server closes."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; the status and the whole body."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            status, fields = _head(await reader.readuntil(b"\r\n\r\n"))
            if fields.get("transfer-encoding") == "chunked":
                answer = await _chunked(reader)
            else:
                answer = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            await self.close()
            raise
        if fields.get("connection") == "close":
            await self.close()
        return status, answer

    async def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()


def _head(raw: bytes) -> tuple[int, dict[str, str]]:
    status_line, *header_lines = raw.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    fields = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
    return status, fields


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields, if any, up to the empty line
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])
