"""What the wire formats of the provider adapters share: tool arguments, binary data, settings."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from typing import Any

from onionskin.core.errors import ConfigError, ModelError
from onionskin.core.messages import Part


def tool_arguments(provider: str, model: str, tool: str, text: str) -> dict[str, Any]:
    """A tool call's arguments, parsed from the JSON text the model wrote.

    Empty text is no arguments (some servers send it for a tool without parameters).

    Raises:
        ModelError: the text is not a JSON object.
    """
    if not text.strip():
        return {}
    try:
        # Any: JSON values, validated later against the tool's own schema.
        value: Any = json.loads(text)
    except ValueError as error:
        raise ModelError(
            f"{provider} model {model!r} called tool {tool!r} with arguments that are not "
            f"valid JSON ({error}): {text[:200]!r}; retry the call, or use a model that "
            "supports tool calling"
        ) from error
    if not isinstance(value, dict):
        raise ModelError(
            f"{provider} model {model!r} called tool {tool!r} with {type(value).__name__} "
            f"arguments, not a JSON object: {text[:200]!r}"
        )
    return value


def data_base64(data: bytes) -> str:
    """Binary content as the base64 text the wire formats carry."""
    return base64.b64encode(data).decode("ascii")


def unsupported_part(provider: str, model: str, role: str, part: Part, allowed: str) -> ModelError:
    """The error for a part that the provider's wire format cannot carry in a `role` message."""
    what = type(part).__name__
    if hasattr(part, "mime_type"):
        what += f" ({part.mime_type})"
    return ModelError(
        f"{provider} model {model!r} cannot take a {what} in a {role} message; "
        f"a {role} message may hold {allowed}"
    )


def passed_settings(
    provider: str, settings: Mapping[str, Any], reserved: Collection[str]
) -> dict[str, Any]:
    """The request settings sent as they are, once none of them names a `reserved` field.

    Raises:
        ConfigError: a setting would overwrite what the adapter itself sends.
    """
    clashes = sorted(key for key in settings if key in reserved)
    if clashes:
        raise ConfigError(
            f"model settings {clashes} cannot be set for a {provider} model: the adapter "
            f"sends them itself ({', '.join(sorted(reserved))}); remove them from the "
            "agent's settings"
        )
    # Any: settings are the provider's JSON values, passed through unchanged.
    return dict(settings)
