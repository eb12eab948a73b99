"""Static API keys for local use: X-API-Key or a Bearer token that is not a JWT."""

from __future__ import annotations

import pytest
from tests.server.conftest import ACME_KEY, GLOBEX_KEY, Served, acme, bearer

from onionskin.core.errors import AuthenticationError
from onionskin.server import ApiKeyGrant, Authenticator, ServerSettings
from onionskin.server.auth import Principal

URL = "/api/v1/pipelines/echo/execute"


async def test_a_key_in_x_api_key_acts_for_its_tenant(served: Served) -> None:
    response = await served.client.post(URL, json={"input": "x"}, headers={"X-API-Key": GLOBEX_KEY})

    assert response.status_code == 200
    assert response.json()["tenant_id"] == "globex"


async def test_a_key_as_a_bearer_token_is_accepted(served: Served) -> None:
    response = await served.client.post(URL, json={"input": "x"}, headers=bearer(ACME_KEY))

    assert response.json()["tenant_id"] == "acme"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "not-a-configured-key-000"},
        {"X-API-Key": ACME_KEY[:-1]},
        {"X-API-Key": ""},
        {"X-API-Key": ACME_KEY, **bearer(ACME_KEY)},
        {"X-API-Key": ACME_KEY, **acme()},
    ],
)
async def test_unknown_empty_or_ambiguous_keys_are_refused(
    served: Served, headers: dict[str, str]
) -> None:
    response = await served.client.post(URL, json={"input": "x"}, headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or missing credentials"


async def test_a_key_names_its_user_without_revealing_itself() -> None:
    settings = ServerSettings(api_keys={ACME_KEY: ApiKeyGrant(tenant_id="acme", role="admin")})

    principal = await Authenticator(settings).authenticate(bearer=None, api_key=ACME_KEY)

    assert principal == Principal(
        tenant_id="acme", role="admin", user_id=principal.user_id, method="api_key"
    )
    assert principal.user_id is not None
    assert principal.user_id.startswith("api-key-")
    assert ACME_KEY not in principal.user_id


async def test_without_keys_or_anonymous_mode_nothing_authenticates() -> None:
    settings = ServerSettings(api_keys={ACME_KEY: ApiKeyGrant(tenant_id="acme")})
    authenticator = Authenticator(settings)

    with pytest.raises(AuthenticationError, match=r"^invalid or missing credentials$"):
        await authenticator.authenticate(bearer=None, api_key=None)


async def test_anonymous_mode_lets_a_request_without_credentials_in() -> None:
    principal = await Authenticator(ServerSettings(anonymous=True)).authenticate(
        bearer=None, api_key=None
    )

    assert principal == Principal(tenant_id=None, role=None, user_id=None, method="anonymous")
