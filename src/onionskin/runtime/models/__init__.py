"""Model adapters, one module per wire protocol."""

from onionskin.core.calls import Model
from onionskin.runtime.models.scripted import ScriptedModel, tool_call

__all__ = ["Model", "ScriptedModel", "tool_call"]
