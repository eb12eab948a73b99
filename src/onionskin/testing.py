"""Helpers for testing code built on onionskin: scripted models, no network, no waiting."""

from onionskin.runtime.models.scripted import ScriptedModel, tool_call

__all__ = ["ScriptedModel", "tool_call"]
