"""`ServerSettings` of live analytics: the Redis URL and the WebSocket client limits."""

from __future__ import annotations

from typing import Any

import pytest

from onionskin.core.errors import ConfigError
from onionskin.server import ServerSettings


def test_redis_url_comes_from_onionskin_redis_url() -> None:
    url = "redis://:s3cret-pass@cache.internal:6380/2"

    configured = ServerSettings.from_env({"ONIONSKIN_REDIS_URL": url})
    default = ServerSettings.from_env({})

    assert configured.redis_url == url
    assert "s3cret-pass" not in repr(configured)
    assert default.redis_url is None
    assert (default.ws_queue_size, default.ws_send_timeout) == (1000, 10.0)


@pytest.mark.parametrize(
    "url", ["http://:s3cret-pass@cache.internal", "cache.internal:6379", "", 6379]
)
def test_a_redis_url_that_is_not_one_is_refused_without_echoing_it(url: Any) -> None:
    with pytest.raises(
        ConfigError, match=r"ServerSettings\.redis_url \(ONIONSKIN_REDIS_URL\)"
    ) as caught:
        ServerSettings(redis_url=url)

    assert "s3cret-pass" not in str(caught.value)
    assert "cache.internal" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ws_queue_size": 0}, "ws_queue_size must be in"),
        ({"ws_queue_size": 2.5}, "ws_queue_size must be a whole number"),
        ({"ws_queue_size": True}, "ws_queue_size must be a number"),
        ({"ws_send_timeout": 0}, "ws_send_timeout must be in"),
        ({"ws_send_timeout": "10"}, "ws_send_timeout must be a number"),
    ],
)
def test_bad_websocket_limits_name_their_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerSettings(**options)
