"""Analytics (seed 003 recipe 7): run events as analytics, exported live and elsewhere.

- [AnalyticsCoordinator][onionskin.analytics.coordinator.AnalyticsCoordinator] listens to
  runs (as middleware or an `on_event` sink) and feeds its exporters off the run's path.
- Exporters: [WebSocketAnalyticsExporter][onionskin.analytics.websocket.WebSocketAnalyticsExporter]
  (into a [LiveHub][onionskin.analytics.hub.LiveHub] that WebSocket routes read, per tenant),
  [RedisFanout][onionskin.analytics.redis_fanout.RedisFanout] (the same, across workers),
  [OTLPAnalyticsExporter][onionskin.analytics.otlp.OTLPAnalyticsExporter] and
  [WebhookAnalyticsExporter][onionskin.analytics.webhook.WebhookAnalyticsExporter].

`RedisFanout` and `WebhookAnalyticsExporter` load on first use, so importing this package
needs neither redis nor httpx2.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from onionskin.analytics._lane import ExporterStats
from onionskin.analytics.coordinator import AnalyticsCoordinator
from onionskin.analytics.events import EVENT_TYPES, AnalyticsEvent, from_run_event
from onionskin.analytics.exporter import (
    AnalyticsExporter,
    BaseAnalyticsExporter,
    ExportResult,
    IAnalyticsExporter,
)
from onionskin.analytics.hub import LiveHub, Subscription
from onionskin.analytics.otlp import OTLPAnalyticsExporter
from onionskin.analytics.websocket import WebSocketAnalyticsExporter, forward_events

if TYPE_CHECKING:
    from onionskin.analytics.redis_fanout import RedisFanout
    from onionskin.analytics.webhook import WebhookAnalyticsExporter

_LAZY = {
    "RedisFanout": "onionskin.analytics.redis_fanout",
    "WebhookAnalyticsExporter": "onionskin.analytics.webhook",
}

__all__ = [
    "EVENT_TYPES",
    "AnalyticsCoordinator",
    "AnalyticsEvent",
    "AnalyticsExporter",
    "BaseAnalyticsExporter",
    "ExportResult",
    "ExporterStats",
    "IAnalyticsExporter",
    "LiveHub",
    "OTLPAnalyticsExporter",
    "RedisFanout",
    "Subscription",
    "WebSocketAnalyticsExporter",
    "WebhookAnalyticsExporter",
    "forward_events",
    "from_run_event",
]


def __getattr__(name: str) -> Any:
    """Load the exporters that need an optional package when first asked for.

    Any: module attributes of every kind.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'onionskin.analytics' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
