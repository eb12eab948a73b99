"""`WebSocket /api/v1/ws/analytics`: the caller's organization's live analytics (seed 003).

Browsers cannot set headers on a WebSocket, but they can offer subprotocols: the
dashboard sends its credentials as `Sec-WebSocket-Protocol: onionskin,
bearer.<base64url(token)>` (or `api-key.<base64url(key)>`), and the server selects
`onionskin`. Query strings reach access logs and browser history, headers do not; so
`?token=<JWT>` and `?api_key=<key>` still work, for clients that can do nothing else, but
are the last resort. The `Authorization` and `X-API-Key` headers work too, for other
clients. The organization comes as `?org_id=` (or `X-Org-ID`) or the path
`/api/v1/organizations/{org_id}/ws/analytics`, with seed 000's rule: sources that disagree
are refused, as are credentials given twice and different.

The handshake is accepted first and a refusal is then a close code a browser can read:
4401 (unauthenticated, always the same reason) or 4403 (no, a malformed or a conflicting
organization); nothing is subscribed before the caller is known. After that the server
sends text frames, each a JSON array of `AnalyticsEvent` objects of the caller's
organization only. A client that falls `ws_queue_size` events behind, or whose one message
takes over `ws_send_timeout` seconds, is dropped (close 1013, try again later): runs publish
without ever waiting for a client. The server going down closes with 1001.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib

from fastapi import APIRouter, WebSocket

from onionskin.analytics import Subscription, forward_events
from onionskin.core.errors import AuthenticationError, TenantError
from onionskin.core.tenant import TenantContext
from onionskin.server.auth import INVALID_CREDENTIALS, Authenticator, Principal
from onionskin.server.routes._live import LiveAnalytics
from onionskin.server.settings import ServerSettings
from onionskin.server.tenancy import ORG_HEADER, resolve_org

router = APIRouter(prefix="/api/v1")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 1013
"""RFC 6455 "try again later": the client fell behind and was dropped."""
CLOSE_GOING_AWAY = 1001


PROTOCOL = "onionskin"
"""The subprotocol the server selects; a client sending credentials as subprotocols offers it."""
_CREDENTIAL_PROTOCOLS = {"bearer.": "bearer", "api-key.": "api_key"}


def _one(error: Exception, *given: str | None) -> str | None:
    """The value given in one or more places (query, header, subprotocol); two differ: `error`."""
    found = {value for value in given if value is not None}
    if len(found) > 1:
        raise error
    return found.pop() if found else None


def _offered(websocket: WebSocket) -> list[str]:
    """The subprotocols the client offered, in its order."""
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [name.strip() for name in header.split(",") if name.strip()]


def _protocol_credentials(offered: list[str]) -> dict[str, str]:
    """`bearer` and `api_key` from `bearer.<base64url>` and `api-key.<base64url>` offers.

    Raises:
        AuthenticationError: a credential that does not decode, one given twice, or
            credentials without `onionskin` (the server could not select it then).
    """
    found: dict[str, str] = {}
    for name in offered:
        for prefix, kind in _CREDENTIAL_PROTOCOLS.items():
            if name.startswith(prefix):
                if kind in found:
                    raise AuthenticationError(INVALID_CREDENTIALS)
                found[kind] = _decoded(name[len(prefix) :])
    if found and PROTOCOL not in offered:
        raise AuthenticationError(INVALID_CREDENTIALS)
    return found


def _decoded(text: str) -> str:
    try:
        padded = text + "=" * (-len(text) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        raise AuthenticationError(INVALID_CREDENTIALS) from None
    if not value:
        raise AuthenticationError(INVALID_CREDENTIALS)
    return value


def _bearer(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        # Another scheme or an empty header is refused, never read as absent (which
        # anonymous local mode would let through), as on the HTTP routes.
        raise AuthenticationError(INVALID_CREDENTIALS)
    return value.strip()


async def _principal(websocket: WebSocket) -> Principal:
    refused = AuthenticationError(INVALID_CREDENTIALS)
    query = websocket.query_params
    offered = _protocol_credentials(_offered(websocket))
    bearer = _one(refused, query.get("token"), _bearer(websocket), offered.get("bearer"))
    api_key = _one(
        refused, query.get("api_key"), websocket.headers.get("x-api-key"), offered.get("api_key")
    )
    authenticator: Authenticator = websocket.app.state.authenticator
    return await authenticator.authenticate(bearer=bearer, api_key=api_key)


def _organization(websocket: WebSocket, principal: Principal) -> str:
    conflict = TenantError("the org_id parameter and the X-Org-ID header disagree")
    named = _one(conflict, websocket.query_params.get("org_id"), websocket.headers.get(ORG_HEADER))
    org = resolve_org(principal, header=named, path=websocket.path_params.get("org_id"))
    return TenantContext(tenant_id=org).tenant_id  # a malformed id: TenantError


def _selected(websocket: WebSocket) -> str | None:
    # A browser that offered subprotocols fails a handshake that selects none of them.
    return PROTOCOL if PROTOCOL in _offered(websocket) else None


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    # Accepted, then closed: a refused handshake would reach a browser as a bare failure.
    await websocket.accept(subprotocol=_selected(websocket))
    await websocket.close(code=code, reason=reason)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it leaves."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _stream(websocket: WebSocket, subscription: Subscription, send_timeout: float) -> None:
    """Forward the subscription until the client leaves, falls behind or the server stops."""
    sender = asyncio.create_task(
        forward_events(subscription, websocket.send_text, send_timeout=send_timeout)
    )
    reader = asyncio.create_task(_until_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, reader):
            task.cancel()
        outcomes = await asyncio.gather(sender, reader, return_exceptions=True)
    if reader in done or isinstance(outcomes[0], BaseException):
        return  # the client left (a send to a client that is gone fails): nothing to close
    code, reason = (
        (CLOSE_TOO_SLOW, "too slow: reconnect")
        if subscription.dropped
        else (CLOSE_GOING_AWAY, "server shutting down")
    )
    # Bounded: a client that stopped reading may never take the close frame either.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(send_timeout):
            await websocket.close(code=code, reason=reason)


@router.websocket("/ws/analytics")
@router.websocket("/organizations/{org_id}/ws/analytics")
async def analytics_socket(websocket: WebSocket) -> None:
    """Send the caller's organization's live analytics events, as JSON arrays."""
    try:
        org = _organization(websocket, await _principal(websocket))
    except AuthenticationError:
        await _refuse(websocket, CLOSE_UNAUTHENTICATED, INVALID_CREDENTIALS)
        return
    except TenantError:
        await _refuse(websocket, CLOSE_FORBIDDEN, "forbidden: no organization, or two")
        return
    live: LiveAnalytics = websocket.app.state.live
    settings: ServerSettings = websocket.app.state.settings
    # Subscribed before the handshake completes: nothing published after it is missed.
    with contextlib.closing(live.hub.subscribe(org)) as subscription:
        await websocket.accept(subprotocol=_selected(websocket))
        await _stream(websocket, subscription, settings.ws_send_timeout)
