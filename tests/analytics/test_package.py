"""The analytics package: importing it needs no optional backend; seed 003's names exist."""

from __future__ import annotations

import subprocess
import sys

import pytest

import onionskin.analytics as analytics


def test_importing_analytics_loads_neither_redis_nor_httpx2() -> None:
    probe = (
        "import sys, onionskin.analytics; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'httpx2'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_optional_exporters_load_on_first_use() -> None:
    from onionskin.analytics.redis_fanout import RedisFanout
    from onionskin.analytics.webhook import WebhookAnalyticsExporter

    assert analytics.RedisFanout is RedisFanout
    assert analytics.WebhookAnalyticsExporter is WebhookAnalyticsExporter
    with pytest.raises(AttributeError, match="NoSuchExporter"):
        _ = analytics.NoSuchExporter


def test_seed_names_are_there() -> None:
    assert analytics.IAnalyticsExporter is analytics.AnalyticsExporter
    assert isinstance(analytics.WebSocketAnalyticsExporter(), analytics.IAnalyticsExporter)
    assert analytics.__all__ == sorted(analytics.__all__, key=lambda n: (not n.isupper(), n))
