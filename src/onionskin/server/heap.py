"""Garbage collection settings for a server process: `settle_heap()` once it has started.

Measured with `benchmarks/server.py`: with CPython's defaults a serving process ran a full
(generation 2) collection every few seconds, each 60-90 ms long, because the 100,000-odd
objects the app is made of (FastAPI, pydantic, the project) were walked every time; every
run in flight then waited that long, and they made the whole p99 (about 150 ms, at a p50 of
45 ms). `gc.freeze()` moves the objects alive at start-up out of the collector's sight (they
live as long as the process anyway), and a larger first-generation threshold lets a run's
short-lived objects die before a collection promotes them. The p99 fell to about 55 ms.

Only for a process the server owns (`onionskin serve` calls it): the settings are global to
the interpreter, so an app embedded in someone else's process leaves them alone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations between two young collections (CPython's default is 700)."""
OLDER_THRESHOLDS = (20, 20)
"""Young collections per middle one, middle ones per full one (defaults: 10, 10)."""


def settle_heap() -> None:
    """Collect once, freeze what survives (the app itself), and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
