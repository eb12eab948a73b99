"""The middleware core: calls, context, chains, events and errors.

Imports nothing else of onionskin; every other layer builds on it.
"""

from onionskin.core.errors import StopProcessing

# Seed 002 imports the signal from the core package (`from ... .core import StopProcessing`).
__all__ = ["StopProcessing"]
