"""The middleware core: calls, context, chains, events and errors.

Imports nothing else of onionskin; every other layer builds on it.
"""
