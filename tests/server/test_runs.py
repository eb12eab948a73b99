"""`/api/v1/runs`: a tenant's runs, checkpoints, replays and forks; another tenant's are 404."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from tests.server.conftest import LEAK, Models, Served, acme, globex

from onionskin.project import Project, load_project

STOPPER = """
    from onionskin import StopProcessing

    def before(content, context):
        raise StopProcessing("closed for today")
"""


@pytest.fixture
def project(project: Project, models: Models) -> Project:
    """The shared test project, with an agent whose middleware ends every run early."""
    (project.path / "agents" / "stopper.yaml").write_text("model: echo\n", encoding="utf-8")
    (project.path / "middleware" / "stopper.py").write_text(
        textwrap.dedent(STOPPER).lstrip(), encoding="utf-8"
    )
    return load_project(project.path, model_resolver=models.resolve)


async def execute(served: Served, name: str, headers: dict[str, str], **body: Any) -> str:
    """Run `name` (JSON form) and return its run id."""
    response = await served.client.post(
        f"/api/v1/pipelines/{name}/execute", json={"input": "x", **body}, headers=headers
    )
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run_id"]
    return run_id


async def get(served: Served, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await served.client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_each_tenant_lists_its_own_runs_newest_first(served: Served) -> None:
    first = await execute(served, "echo", acme())
    second = await execute(served, "research", acme())
    theirs = await execute(served, "echo", globex())

    mine = await get(served, "/api/v1/runs", acme())
    other = await get(served, "/api/v1/organizations/globex/runs", globex())
    limited = await get(served, "/api/v1/runs?limit=1", acme())

    assert [run["run_id"] for run in mine["runs"]] == [second, first]
    assert [run["run_id"] for run in other["runs"]] == [theirs]
    assert [run["run_id"] for run in limited["runs"]] == [second]
    newest = mine["runs"][0]
    assert newest["pipeline_id"] == "research"
    assert newest["tenant_id"] == "acme"
    assert newest["status"] == "completed"
    assert newest["checkpoints"] > 2
    assert newest["last_step"].startswith("output: echo:")
    assert newest["started_at"] <= newest["updated_at"]
    assert newest["started_at"].endswith("+00:00")


async def test_a_run_and_its_checkpoints_show_each_step(served: Served) -> None:
    run_id = await execute(served, "assistant", acme(), input="rust", state={"topic": "langs"})

    run = await get(served, f"/api/v1/runs/{run_id}", acme())
    found = (await get(served, f"/api/v1/runs/{run_id}/checkpoints", acme()))["checkpoints"]

    assert run["run_id"] == run_id
    assert run["status"] == "completed"
    assert run["checkpoints"] == len(found)
    assert [c["step"] for c in found] == list(range(len(found)))
    assert found[0]["parent_id"] is None
    assert [c["parent_id"] for c in found[1:]] == [c["checkpoint_id"] for c in found[:-1]]
    assert found[0]["kind"] == "input"
    assert found[-1]["kind"] == "end"
    assert found[-1]["summary"].startswith("output: found: facts about rust")
    assert all(c["state"]["topic"] == "langs" for c in found)
    assert all(c["run_id"] == run_id for c in found)
    transcript = [(m["role"], m["text"]) for c in found for m in c["messages"]]
    assert ("user", "rust") in transcript
    assert any(text.startswith("calls lookup(topic='rust')") for _, text in transcript)
    assert any(text == "lookup → facts about rust" for _, text in transcript)


async def test_a_stopped_and_a_failed_run_say_so_without_internal_detail(served: Served) -> None:
    stopped = await execute(served, "stopper", acme())
    crash = await served.client.post(
        "/api/v1/pipelines/crash/execute", json={"input": "x"}, headers=acme()
    )

    runs = {run["run_id"]: run for run in (await get(served, "/api/v1/runs", acme()))["runs"]}
    failed_id = next(run_id for run_id in runs if run_id != stopped)
    checkpoints = await get(served, f"/api/v1/runs/{failed_id}/checkpoints", acme())

    assert crash.status_code == 500
    assert runs[stopped]["status"] == "stopped"
    assert runs[failed_id]["status"] == "failed"
    assert runs[failed_id]["last_step"].startswith("failed: ServerError: the run failed")
    assert LEAK not in str(runs)
    assert LEAK not in str(checkpoints)


async def test_replay_runs_again_from_a_checkpoint_as_a_new_run(
    served: Served, models: Models
) -> None:
    run_id = await execute(served, "research", acme(), input="go")
    found = (await get(served, f"/api/v1/runs/{run_id}/checkpoints", acme()))["checkpoints"]
    after_assistant = next(c for c in found if c["kind"] == "agent" and c["agent"] == "assistant")

    replayed = await served.client.post(
        f"/api/v1/runs/{run_id}/replay",
        json={"checkpoint_id": after_assistant["checkpoint_id"]},
        headers=acme(),
    )

    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert body["run_id"] != run_id
    assert body["pipeline"] == "research"
    assert body["tenant_id"] == "acme"
    assert body["output"].startswith("echo:")
    assert set(body) == {
        "run_id", "pipeline", "tenant_id", "output", "stopped", "usage", "cost_usd", "duration_ms"
    }  # fmt: skip
    new = (await get(served, f"/api/v1/runs/{body['run_id']}/checkpoints", acme()))["checkpoints"]
    assert new[0]["parent_id"] == after_assistant["checkpoint_id"]
    # Only echo ran again: the assistant's turn (and its tool call) came from the checkpoint.
    assert {c["agent"] for c in new} == {"echo"}
    original = await get(served, f"/api/v1/runs/{run_id}", acme())
    assert original["checkpoints"] == len(found)


async def test_a_fork_sets_state_over_the_saved_state(served: Served) -> None:
    run_id = await execute(served, "greeter", acme(), state={"customer": "Ann"})
    first = (await get(served, f"/api/v1/runs/{run_id}/checkpoints", acme()))["checkpoints"][0]

    forked = await served.client.post(
        f"/api/v1/organizations/acme/runs/{run_id}/replay",
        json={"checkpoint_id": first["checkpoint_id"], "state": {"customer": "Bob"}},
        headers=acme(),
    )

    assert forked.status_code == 200, forked.text
    new_id = forked.json()["run_id"]
    new = (await get(served, f"/api/v1/runs/{new_id}/checkpoints", acme()))["checkpoints"]
    assert {c["state"]["customer"] for c in new} == {"Bob"}
    old = (await get(served, f"/api/v1/runs/{run_id}/checkpoints", acme()))["checkpoints"]
    assert {c["state"]["customer"] for c in old} == {"Ann"}


async def test_another_tenants_run_is_not_found_anywhere(served: Served) -> None:
    run_id = await execute(served, "research", acme())
    checkpoint_id = (await get(served, f"/api/v1/runs/{run_id}/checkpoints", acme()))[
        "checkpoints"
    ][0]["checkpoint_id"]
    before = await get(served, "/api/v1/runs", acme())

    attempts = [
        await served.client.get(f"/api/v1/runs/{run_id}", headers=globex()),
        await served.client.get(f"/api/v1/runs/{run_id}/checkpoints", headers=globex()),
        await served.client.get(
            f"/api/v1/organizations/globex/runs/{run_id}/checkpoints", headers=globex()
        ),
        await served.client.post(
            f"/api/v1/runs/{run_id}/replay",
            json={"checkpoint_id": checkpoint_id},
            headers=globex(),
        ),
        await served.client.post(
            f"/api/v1/runs/{run_id}/replay",
            json={"checkpoint_id": checkpoint_id, "state": {"x": 1}},
            headers=globex(),
        ),
    ]
    unknown = await served.client.get(
        "/api/v1/runs/0190c0de-0000-7000-8000-000000000000", headers=globex()
    )
    listed = await get(served, "/api/v1/runs", globex())

    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
        assert "acme" not in response.text
    # The same answer as for an id nobody has: existence is not revealed.
    assert unknown.json()["detail"] == attempts[0].json()["detail"].replace(
        run_id, "0190c0de-0000-7000-8000-000000000000"
    )
    assert listed == {"runs": []}
    assert await get(served, "/api/v1/runs", acme()) == before  # nothing was replayed


async def test_the_path_cannot_name_another_organization(served: Served) -> None:
    run_id = await execute(served, "echo", acme())

    response = await served.client.get(
        f"/api/v1/organizations/acme/runs/{run_id}", headers=globex()
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert run_id not in response.text


async def test_a_checkpoint_of_another_run_cannot_be_replayed_under_this_one(
    served: Served,
) -> None:
    one = await execute(served, "echo", acme())
    two = await execute(served, "echo", acme())
    checkpoint_id = (await get(served, f"/api/v1/runs/{one}/checkpoints", acme()))["checkpoints"][
        0
    ]["checkpoint_id"]

    response = await served.client.post(
        f"/api/v1/runs/{two}/replay", json={"checkpoint_id": checkpoint_id}, headers=acme()
    )

    assert response.status_code == 404
    assert len((await get(served, "/api/v1/runs", acme()))["runs"]) == 2


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/runs/" + "r" * 300, None),
        ("/api/v1/runs/%01/checkpoints", None),
        ("/api/v1/runs/x/replay", {"checkpoint_id": "\u0001"}),
        ("/api/v1/runs/%7F/replay", {"checkpoint_id": "c"}),
    ],
)
async def test_malformed_ids_are_simply_not_found(
    served: Served, path: str, body: dict[str, Any] | None
) -> None:
    if body is None:
        response = await served.client.get(path, headers=acme())
    else:
        response = await served.client.post(path, json=body, headers=acme())

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [{}, {"checkpoint_id": ""}, {"checkpoint_id": 5}, {"checkpoint_id": "c", "extra": 1}],
)
async def test_a_bad_replay_body_is_422_and_runs_nothing(
    served: Served, body: dict[str, Any]
) -> None:
    run_id = await execute(served, "echo", acme())

    response = await served.client.post(f"/api/v1/runs/{run_id}/replay", json=body, headers=acme())

    assert response.status_code == 422
    assert len((await get(served, "/api/v1/runs", acme()))["runs"]) == 1


@pytest.mark.parametrize("limit", ["0", "201", "many"])
async def test_a_bad_limit_is_422(served: Served, limit: str) -> None:
    response = await served.client.get(f"/api/v1/runs?limit={limit}", headers=acme())

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_runs_need_credentials(served: Served) -> None:
    response = await served.client.get("/api/v1/runs")

    assert response.status_code == 401
