"""`ServerSettings`: from the environment, with errors naming the bad field or variable."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.conftest import SECRET

from onionskin.core.errors import ConfigError
from onionskin.server import ApiKeyGrant, ServerSettings
from onionskin.server.api_keys import parse_api_keys


def test_from_env_reads_every_variable() -> None:
    settings = ServerSettings.from_env(
        {
            "ONIONSKIN_JWT_SECRET": SECRET,
            "ONIONSKIN_JWT_JWKS_URL": "https://idp.test/jwks.json",
            "ONIONSKIN_JWT_ISSUER": "https://idp.test",
            "ONIONSKIN_JWT_AUDIENCE": "onionskin",
            "ONIONSKIN_JWT_LEEWAY": "10",
            "ONIONSKIN_API_KEYS": "key-for-acme-000000=acme:admin, key-for-globex-00000=globex",
            "ONIONSKIN_MAX_BODY_BYTES": "2048",
        }
    )

    assert settings.jwt_algorithms == ("HS256", "RS256", "ES256")
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://idp.test", "onionskin")
    assert settings.jwt_leeway_seconds == 10.0
    assert settings.max_body_bytes == 2048
    assert dict(settings.api_keys) == {
        "key-for-acme-000000": ApiKeyGrant(tenant_id="acme", role="admin"),
        "key-for-globex-00000": ApiKeyGrant(tenant_id="globex", role=None),
    }


def test_defaults_are_safe() -> None:
    settings = ServerSettings.from_env({})

    assert settings.jwt_algorithms == ()
    assert settings.anonymous is False
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.jwt_leeway_seconds == 30.0
    assert not settings.authenticates


def test_overrides_win_over_the_environment() -> None:
    settings = ServerSettings.from_env({"ONIONSKIN_MAX_BODY_BYTES": "10"}, max_body_bytes=20)

    assert settings.max_body_bytes == 20


def test_secrets_never_appear_in_the_repr() -> None:
    settings = ServerSettings(
        jwt_secret=SECRET, api_keys={"key-for-acme-000000": ApiKeyGrant(tenant_id="acme")}
    )

    assert SECRET not in repr(settings)
    assert "key-for-acme-000000" not in repr(settings)


def test_serving_without_a_way_to_authenticate_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"ONIONSKIN_JWT_SECRET.*--insecure-local"):
        ServerSettings().check_servable()

    ServerSettings(anonymous=True).check_servable()
    ServerSettings(jwt_secret=SECRET).check_servable()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"jwt_secret": "short"}, "jwt_secret must be at least 32 bytes"),
        ({"jwt_jwks_url": "http://idp.test/jwks"}, "jwt_jwks_url must be an https:// URL"),
        ({"jwt_jwks_url": "ftp://idp.test/jwks"}, "jwt_jwks_url must be an https:// URL"),
        ({"jwt_issuer": ""}, "jwt_issuer must be a non-empty string"),
        ({"jwt_algorithms": ("none",), "jwt_secret": SECRET}, "'none' is not accepted"),
        ({"jwt_algorithms": ("HS256",)}, "HS256 needs jwt_secret"),
        ({"jwt_algorithms": ("RS256",), "jwt_secret": SECRET}, "RS256 needs jwt_jwks_url"),
        ({"jwt_algorithms": ("HS512",), "jwt_secret": "s" * 40}, "too short for HS512"),
        ({"jwt_leeway_seconds": -1}, "jwt_leeway_seconds must be in"),
        ({"jwt_leeway_seconds": "30"}, "jwt_leeway_seconds must be a number"),
        ({"max_body_bytes": 0}, "max_body_bytes must be in"),
        ({"max_body_bytes": 10.5}, "max_body_bytes must be a whole number"),
        ({"max_body_bytes": True}, "max_body_bytes must be a number"),
        ({"sse_ping_seconds": 0}, "sse_ping_seconds must be in"),
        ({"api_keys": {"short": ApiKeyGrant(tenant_id="acme")}}, "key 1 must be at least 16"),
        ({"api_keys": {"k" * 16: ApiKeyGrant(tenant_id="a/b")}}, "key 1: its tenant must be"),
        ({"api_keys": {"k" * 16: ApiKeyGrant(tenant_id="a", role="x y")}}, "its role must be"),
        ({"api_keys": {"k" * 16: "acme"}}, "must map to an ApiKeyGrant"),
    ],
)
def test_bad_values_name_their_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerSettings(**options)


def test_a_loopback_jwks_url_may_use_plain_http() -> None:
    settings = ServerSettings(jwt_jwks_url="http://127.0.0.1:8080/jwks.json")

    assert settings.jwt_algorithms == ("RS256", "ES256")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just-a-key", "entry 1 must read key=tenant"),
        ("k1=acme,=globex", "entry 2 must read key=tenant"),
        ("k1=", "entry 1 must read key=tenant"),
        ("k1=acme,k1=globex", "entry 2 repeats the key"),
    ],
)
def test_malformed_api_key_lists_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"ONIONSKIN_API_KEYS: {message}"):
        parse_api_keys(text)


def test_an_error_about_a_key_never_shows_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env({"ONIONSKIN_API_KEYS": "super-secret-key-1=a/b"})

    assert "super-secret-key-1" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ONIONSKIN_MAX_BODY_BYTES", "1MB"), ("ONIONSKIN_JWT_LEEWAY", "soon")],
)
def test_a_number_that_does_not_parse_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable} must be a"):
        ServerSettings.from_env({variable: value})
