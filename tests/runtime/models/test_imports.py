"""The SDKs are optional: onionskin imports neither, and each adapter names its extra."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_importing_onionskin_and_the_resolver_loads_no_sdk() -> None:
    probe = (
        "import sys, onionskin, onionskin.testing; "
        "from onionskin.runtime.models.resolve import resolve_model, ModelOptions; "
        "resolve_model('openai:gpt-4o-mini', ModelOptions(environ={})); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'anthropic'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("sdk", "module", "extra"),
    [
        ("openai", "onionskin.runtime.models.openai", "openai"),
        ("anthropic", "onionskin.runtime.models.anthropic", "anthropic"),
    ],
)
def test_an_adapter_without_its_sdk_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, sdk: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, sdk, None)  # None: the import fails, as if not installed
    monkeypatch.delitem(sys.modules, module, raising=False)

    with pytest.raises(ImportError, match=rf'pip install "onionskin\[{extra}\]"'):
        importlib.import_module(module)
