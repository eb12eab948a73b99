"""`BodyLimitMiddleware`: request bodies larger than the limit get 413, enforced while reading.

Pure ASGI, so it sees the body as it arrives: a `Content-Length` over the limit is refused
before a byte is read, and a body without one (chunked) is counted as it streams in and
refused as soon as it passes the limit, never buffered whole. Starlette's own body limit
answers in plain text; this one answers problem+json like every other error.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onionskin.server.errors import Problem, problem_response


class BodyTooLargeError(HTTPException):
    """The request body passed the limit while it was read.

    An `HTTPException`, so that FastAPI passes it on from its body reading (it turns any
    other exception there into a 400) to the problem handlers.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than the limit of {limit} bytes; send less",
        )


class BodyLimitMiddleware:
    """Refuses request bodies over `max_body_bytes` with 413 problem+json.

    Args:
        app: the application to protect.
        max_body_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, refusing its body once it passes the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLargeError:
            if started:  # an endpoint read its body after answering: nothing left to say
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLargeError(self.max_body_bytes)
        problem = Problem(status=413, code="body_too_large", detail=str(error.detail))
        request_id = scope.get("state", {}).get("request_id")
        await problem_response(problem, request_id=request_id)(scope, receive, send)
