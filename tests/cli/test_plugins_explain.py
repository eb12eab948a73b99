"""`onionskin plugins` (the installed test plugins really load) and `onionskin explain`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from onionskin.plugins import default_registry
from tests.cli.conftest import Cli, Invoke, one_line_error
from tests.cli.projects import json_of, new_project

FIXTURE_PLUGINS = {
    # name: (status, middleware or the start of the error)
    "broken_import": ("skipped", "ImportError: onionskin_test_plugin.broken cannot be imported"),
    "exploding": ("skipped", "RuntimeError: the exploding test plugin always fails"),
    "not_a_factory": ("skipped", "ConfigError: onionskin_test_plugin.factories:NOT_A_FACTORY is"),
    "not_middleware": ("skipped", "ConfigError: 42 is not a middleware"),
    "opt_out": ("opted out", None),
    "scope_banner": ("loaded", "ScopeBannerMiddleware"),
}
AUDIT_TOOL_FILE = """\
from onionskin.plugins import register_middleware


class AuditLayer:
    def before_model(self, context, request):
        return None


def _audit(config):
    return AuditLayer() if config.project_dir is not None else None


register_middleware(_audit, name="audit")
"""
"""A project file that registers a plugin in the default registry when the project loads."""


@pytest.fixture
def audit_plugin() -> Iterator[None]:
    """Unregisters the plugin a project's file registers in this process's default registry."""
    yield
    if "audit" in default_registry().names:
        default_registry().unregister("audit")


def test_plugins_lists_the_installed_ones_and_why_some_were_skipped(cli: Cli) -> None:
    listed = cli("plugins", "--json")

    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""  # the loader's warnings are the listing's rows, not repeated
    shown = json.loads(listed.stdout)
    assert shown["group"] == "onionskin.middleware"
    rows = {row["name"]: row for row in shown["plugins"]}
    assert set(FIXTURE_PLUGINS) <= set(rows)
    for name, (status, detail) in FIXTURE_PLUGINS.items():
        row = rows[name]
        assert row["status"] == status, row
        assert row["source"].endswith("(onionskin-test-plugin)")
        if status == "loaded":
            assert (row["middleware"], row["error"]) == (detail, None)
        elif status == "skipped":
            assert row["error"].startswith(detail), row
        else:
            assert (row["middleware"], row["error"]) == (None, None)
    assert rows["exploding"]["target"] == "onionskin_test_plugin.factories:exploding"


def test_plugins_of_a_project_use_its_settings_and_its_registrations(
    invoke: Invoke, tmp_path: Path, audit_plugin: None
) -> None:
    project = new_project(invoke, tmp_path / "shop")
    (project / "tools" / "audit.py").write_text(AUDIT_TOOL_FILE)
    settings = "plugins:\n  scope_banner:\n    metadata_key: scope\n"
    (project / "onionskin.yaml").write_text(settings)

    shown = invoke("plugins", "--project", str(project))

    assert shown.exit_code == 0, shown.output
    rows = {
        cells[0]: cells
        for line in shown.stdout.splitlines()
        if line.startswith("│")
        for cells in [[cell.strip() for cell in line.split("│")[1:-1]]]
        if cells[0]
    }
    assert rows["audit"][1:] == ["registered", "loaded", "AuditLayer"]
    assert rows["scope_banner"][2:] == ["loaded", "ScopeBannerMiddleware"]
    assert rows["opt_out"][2] == "opted out"
    assert rows["exploding"][2:] == [
        "skipped",
        "RuntimeError: the exploding test plugin always fails",
    ]
    default_registry().unregister("audit")  # loading the project again registers it again
    assert json_of(invoke, "plugins", "--project", str(project))["settings"] == {
        "scope_banner": {"metadata_key": "scope"}
    }


def test_plugin_settings_for_no_such_plugin_are_refused(invoke: Invoke, tmp_path: Path) -> None:
    project = new_project(invoke, tmp_path / "shop")
    (project / "onionskin.yaml").write_text("plugins:\n  scope_baner: {}\n")

    line = one_line_error(invoke("plugins", "--project", str(project)))

    assert (
        "settings name plugins that are neither registered nor installed: ['scope_baner']" in line
    )


EXPECTED_LAYERS = {
    "pipeline": ["TenantMiddleware", "CheckpointMiddleware"],
    "agent": ["CheckpointMiddleware", "FileMiddleware"],
    "model": [
        "CheckpointMiddleware",
        "CostMiddleware",
        "ScopeBannerMiddleware",
        "MessageCaptureMiddleware",
    ],
    "tool": ["CheckpointMiddleware", "MessageCaptureMiddleware"],
}
"""What `run` puts around the example's assistant: core, file middleware, plugin, capture."""


def test_explain_shows_the_stack_run_builds(cli: Cli, invoke: Invoke, tmp_path: Path) -> None:
    project = new_project(invoke, tmp_path / "shop")

    shown = cli("explain", "shop", "--agent", "assistant")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"The middleware of 'assistant' in {project}, outermost first:"
    expected = []
    for kind, names in EXPECTED_LAYERS.items():
        expected.append(f"{kind} ({len(names)} layers):")
        expected.extend(f"  {index}. {name} (" for index, name in enumerate(names, 1))
    for line, start in zip(lines[1:], expected, strict=True):
        assert line.startswith(start), (line, start)
    assert "  4. MessageCaptureMiddleware (wrap; capture)" in lines
    assert "  1. TenantMiddleware (before)" in lines
    assert not (project / ".onionskin").exists()  # explaining opens no database


def test_explain_json_is_the_explanation_as_data(invoke: Invoke, tmp_path: Path) -> None:
    project = new_project(invoke, tmp_path / "shop")

    shown = json_of(invoke, "explain", str(project), "--agent", "reviewed")

    layers = {kind: [layer["name"] for layer in found] for kind, found in shown["kinds"].items()}
    assert layers == EXPECTED_LAYERS  # one FileMiddleware: the reviewer has no file
    assert shown["kinds"]["model"][3]["position"] == "capture"
    assert shown["on_error"] == []
    line = one_line_error(invoke("explain", str(project), "--agent", "nobody"))
    assert "no agent or pipeline named 'nobody' (known: assistant, reviewed, reviewer)" in line
