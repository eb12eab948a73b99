"""One short line per checkpoint, as `onionskin checkpoints RUN` shows it.

The words live in `onionskin.stores._checkpoint_summary`, shared with the HTTP API, so the
CLI and the dashboard describe a step alike.
"""

from __future__ import annotations

from onionskin.stores._checkpoint_summary import summary

__all__ = ["summary"]
