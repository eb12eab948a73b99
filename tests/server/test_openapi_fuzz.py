"""Schemathesis against the OpenAPI document: generated requests get documented answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.core.result import Ok
from tests.server.conftest import acme, settings

from onionskin.project import Project
from onionskin.server import create_app


def test_every_generated_request_gets_a_documented_answer(project: Project, tmp_path: Path) -> None:
    app = create_app(project, settings(), database_url=f"sqlite:///{tmp_path}/fuzz.db")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) == 21  # execute (3) and the resource routes (9, twice each)

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=acme())

        check()
