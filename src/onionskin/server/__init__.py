"""The HTTP API (`onionskin serve`): a project's pipelines over FastAPI, per tenant.

```python
app = create_app(load_project("my-project"), ServerSettings.from_env())
```

Needs the `server` extra: `pip install "onionskin[server]"`.
"""

try:
    import fastapi as _fastapi  # noqa: F401  # probed first: the error names the extra
    import httpx2 as _httpx2  # noqa: F401
    import jwt as _jwt  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'the HTTP API needs FastAPI, PyJWT and httpx2: pip install "onionskin[server]"'
    ) from error

from onionskin.server.api_keys import ApiKeyGrant
from onionskin.server.app import create_app
from onionskin.server.auth import Authenticator, Principal
from onionskin.server.jwks import JwksClient
from onionskin.server.settings import ServerSettings

__all__ = [
    "ApiKeyGrant",
    "Authenticator",
    "JwksClient",
    "Principal",
    "ServerSettings",
    "create_app",
]
