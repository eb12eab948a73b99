"""One Redis connection for the guard stores: URL from configuration, Lua scripts, errors.

Every store operation is one Lua script, so it is atomic and costs one round trip; the
scripts read the Redis server's clock (`TIME`), so workers with skewed clocks agree.
A Redis failure becomes a `StoreError`, which each guard turns into its failure policy.
"""

from __future__ import annotations

import os
from typing import Any

try:
    import redis.asyncio as redis
    from redis.commands.core import AsyncScript
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'the Redis stores need the redis package: pip install "onionskin[redis]"'
    ) from error

from onionskin.core.errors import StoreError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    """The Redis URL from `ONIONSKIN_REDIS_URL` (or `REDIS_URL`), else the local default."""
    return os.environ.get("ONIONSKIN_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


class RedisScripts:
    """A Redis client, a key prefix, and the Lua scripts registered on it."""

    def __init__(self, client: redis.Redis, *, prefix: str = "onionskin") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        prefix: str = "onionskin",
        max_connections: int = 64,
        pool_timeout: float = 10.0,
    ) -> RedisScripts:
        """Connect lazily to `url` (default: `redis_url()`); nothing is sent until first use.

        Calls beyond `max_connections` at once wait up to `pool_timeout` seconds for a free
        connection rather than fail (redis-py's default pool raises past its limit): a burst
        of guarded calls is the normal case.
        """
        pool = redis.BlockingConnectionPool.from_url(
            url or redis_url(),
            max_connections=max_connections,
            timeout=pool_timeout,
            socket_timeout=2.0,
        )
        # from_pool hands the pool to the client, so aclose() closes both.
        return cls(redis.Redis.from_pool(pool), prefix=prefix)

    def key(self, *parts: str) -> str:
        """A namespaced key: `prefix:part:part`."""
        return ":".join((self.prefix, *parts))

    def register(self, source: str) -> AsyncScript:
        """Register a Lua script; it is sent by SHA and reloaded if the server lost it."""
        return self.client.register_script(source)

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run `script`; a Redis failure becomes `StoreError`.

        Any: a Lua script answers whatever shape it was written to return.
        """
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            raise StoreError(f"redis: {type(error).__name__}: {error}") from error

    async def ping(self) -> None:
        """Check that the server answers; `StoreError` naming the server (no password) if not.

        For start-up: a configured Redis that is missing must fail loudly then
        (DEPENDENCIES lesson 3), not on the first guarded call.
        """
        try:
            await self.client.ping()
        except (RedisError, OSError) as error:
            kwargs = self.client.connection_pool.connection_kwargs
            where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
            raise StoreError(
                f"redis at {where} is unreachable ({type(error).__name__}: {error}); start it "
                "or fix redis_url"
            ) from error

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
