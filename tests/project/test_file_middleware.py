"""Seed 002: `middleware/<agent>.py`, its `before(content, context)` and `after(response, ...)`."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from onionskin import (
    DataPart,
    Message,
    ModelRequest,
    ModelResponse,
    TenantContext,
    TextPart,
)
from onionskin.project import ProjectError
from onionskin.testing import FakeClock, tool_call
from tests.project.conftest import LoadProject, Models

ASSISTANT = {"agents/assistant.yaml": "instructions: You help.\n"}
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def user_message(models: Models) -> Message:
    assert len(models.seen) == 1
    message = models.seen[0].messages[-1]
    assert message.role == "user"
    return message


# --- before(): the content dict ------------------------------------------------------------


async def test_before_inserts_a_timestamp_part_first(load: LoadProject, models: Models) -> None:
    """The seed's basic example: a `[Current time: ...]` part goes before the user's text."""
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                from datetime import datetime

                async def before(content, context):
                    now = datetime.fromisoformat(context["timestamp"])
                    time_context = f"[Current time: {now.strftime('%A, %B %d, %Y')}]"
                    content["parts"].insert(0, {"text": time_context})
                    return content
            """,
        }
    )

    await project.orchestrator("assistant").execute("What day is it?")

    # The fake clock starts at 1_700_000_000 s: Tuesday, 14 November 2023, 22:13:20 UTC.
    assert user_message(models).parts == [
        TextPart("[Current time: Tuesday, November 14, 2023]"),
        TextPart("What day is it?"),
    ]


async def test_before_gets_text_and_data_parts_as_dicts(load: LoadProject, models: Models) -> None:
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                import copy

                def before(content, context):
                    context["seen_content"] = copy.deepcopy(content)
                    return content
            """,
        }
    )
    message = Message("user", [TextPart("Read this"), DataPart(PDF, "application/pdf")])

    result = await project.orchestrator("assistant").execute(message)

    assert result.state["seen_content"] == {
        "role": "user",
        "parts": [{"text": "Read this"}, {"data": PDF, "mime_type": "application/pdf"}],
    }
    assert user_message(models) == message


async def test_before_attaches_a_pdf_as_a_data_part(load: LoadProject, models: Models) -> None:
    """The seed's document example: a PDF attached when the user asks about pricing."""
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": f"""
                async def before(content, context):
                    user_text = ""
                    for part in content["parts"]:
                        if "text" in part:
                            user_text = part["text"]
                            break
                    if "pricing" in user_text.lower():
                        content["parts"].append({{"data": {PDF!r}, "mime_type": "application/pdf"}})
                    return content
            """,
        }
    )
    orchestrator = project.orchestrator("assistant")

    await orchestrator.execute("What is your pricing?")
    await orchestrator.execute("Hello")

    with_pdf, without = (request.messages[-1] for request in models.seen)
    assert with_pdf.parts == [TextPart("What is your pricing?"), DataPart(PDF, "application/pdf")]
    assert without.parts == [TextPart("Hello")]


async def test_before_prepends_customer_context_from_the_context_dict(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                CUSTOMERS = {"c42": {"name": "Ada", "plan": "pro", "status": "active"}}

                async def before(content, context):
                    data = CUSTOMERS.get(context.get("customer_id"))
                    info = ""
                    if data:
                        info = f"Customer: {data['name']}\\nPlan: {data['plan']}"
                    text = f"[CUSTOMER CONTEXT]\\n{info}\\n[END CONTEXT]"
                    content["parts"].insert(0, {"text": text})
                    return content
            """,
        }
    )

    await project.orchestrator("assistant").execute("Help", state={"customer_id": "c42"})

    assert user_message(models).parts[0] == TextPart(
        "[CUSTOMER CONTEXT]\nCustomer: Ada\nPlan: pro\n[END CONTEXT]"
    )


async def test_a_value_set_in_before_fills_a_placeholder_in_the_instructions(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            "agents/assistant.yaml": "instructions: 'Serve {customer_name} ({plan} plan).'\n",
            "middleware/assistant.py": """
                def before(content, context):
                    context["customer_name"] = "Ada"
                    context["plan"] = "pro"
                    return content
            """,
        }
    )

    result = await project.orchestrator("assistant").execute("Hi")

    assert models.system_prompts() == ["Serve Ada (pro plan)."]
    assert result.state["customer_name"] == "Ada"


async def test_tools_and_after_see_what_before_put_in_the_context(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            "agents/assistant.yaml": "tools: [whoami]\n",
            "tools/people.py": """
                from onionskin import current_context

                def whoami() -> str:
                    \"\"\"Who the customer is.\"\"\"
                    return "customer " + current_context().state["customer"]
            """,
            "middleware/assistant.py": """
                def before(content, context):
                    context["customer"] = "Ada"
                    return content

                def after(response, context):
                    return f"{response} (for {context['customer']})"
            """,
        }
    )
    models.answers = [tool_call("whoami"), "done"]

    result = await project.orchestrator("assistant").execute("Who am I?")

    tool_message = models.seen[1].messages[-1]
    assert tool_message.role == "tool"
    assert tool_message.parts[0].content == "customer Ada"  # type: ignore[union-attr]
    assert result.output == "done (for Ada)"


# --- after(): the response -----------------------------------------------------------------


def advancing(clock: FakeClock, seconds: float) -> Any:
    """An outer middleware whose model calls take `seconds` on the fake clock."""

    async def wrap_model_call(
        request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        clock.advance(seconds)
        return await next(request)

    class Advance:
        pass

    advance = Advance()
    advance.wrap_model_call = wrap_model_call  # type: ignore[attr-defined]
    return advance


async def test_after_wraps_the_response_with_run_id_duration_and_tokens(
    load: LoadProject, clock: FakeClock
) -> None:
    """The seed's analytics and formatter examples, in one `after()`."""
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                import json

                async def after(response, context):
                    return json.dumps({
                        "response": response,
                        "run_id": context.get("run_id"),
                        "agent": context.get("agent_name"),
                        "duration_ms": context.get("duration_ms"),
                        "tokens": context.get("token_usage", {}),
                        "processed_at": context.get("timestamp"),
                    })
            """,
        }
    )
    orchestrator = project.orchestrator("assistant", middleware=[advancing(clock, 0.25)])

    result = await orchestrator.execute("Hi")

    assert json.loads(result.output) == {
        "response": "echo: Hi",
        "run_id": result.run_id,
        "agent": "assistant",
        "duration_ms": 250.0,
        "tokens": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        },
        "processed_at": "2023-11-14T22:13:20+00:00",
    }
    assert result.usage.input_tokens > 0


async def test_sync_hooks_work_like_async_ones(load: LoadProject, models: Models) -> None:
    """The seed's `simple.py`: sync before() prefixes the text, sync after() strips."""
    models.answers = ["  padded answer \n"]
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                def before(content, context):
                    for part in content["parts"]:
                        if "text" in part:
                            part["text"] = "[Processed] " + part["text"]
                            break
                    return content

                def after(response, context):
                    return response.strip()
            """,
        }
    )

    result = await project.orchestrator("assistant").execute("Hello")

    assert user_message(models).parts == [TextPart("[Processed] Hello")]
    assert result.output == "padded answer"


async def test_an_after_only_file_leaves_the_input_alone(load: LoadProject, models: Models) -> None:
    project = load(
        {**ASSISTANT, "middleware/assistant.py": "def after(r, c):\n    return r.upper()\n"}
    )

    result = await project.orchestrator("assistant").execute("quiet")

    assert user_message(models).parts == [TextPart("quiet")]
    assert result.output == "ECHO: QUIET"


async def test_a_before_only_file_leaves_the_output_alone(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                def before(content, context):
                    content["parts"] = [{"text": "rewritten"}]
                    return content
            """,
        }
    )

    result = await project.orchestrator("assistant").execute("original")

    assert result.output == "echo: rewritten"
    assert "duration_ms" not in result.state  # only after() gets the timing keys


# --- stopping and failing ------------------------------------------------------------------

AUTH = """
    from onionskin import StopProcessing

    async def before(content, context):
        user_text = ""
        for part in content["parts"]:
            if "text" in part:
                user_text = part["text"]
                break
        if "AUTH:" not in user_text:
            raise StopProcessing("Authentication required")
        return content
"""


async def test_stop_processing_in_before_completes_the_run_with_its_response(
    load: LoadProject, models: Models
) -> None:
    project = load({**ASSISTANT, "middleware/assistant.py": AUTH})
    orchestrator = project.orchestrator("assistant")

    refused = await orchestrator.execute("no token here")

    assert refused.status == "completed"
    assert refused.stopped
    assert refused.output == "Authentication required"
    assert models.seen == []

    allowed = await orchestrator.execute("AUTH: secret, hello")

    assert not allowed.stopped
    assert allowed.output == "echo: AUTH: secret, hello"


async def test_an_exception_in_before_fails_the_run_and_the_agent_never_runs(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                class Invalid(Exception):
                    pass

                def before(content, context):
                    raise Invalid("bad request")
            """,
        }
    )
    failed: list[BaseException] = []

    class Watch:
        def on_error(self, context: Any, error: BaseException) -> None:
            failed.append(error)

    with pytest.raises(Exception, match="bad request") as raised:
        await project.orchestrator("assistant", middleware=[Watch()]).execute("hi")

    assert type(raised.value).__name__ == "Invalid"  # the hook's own exception, unchanged
    assert "raised by before() in middleware/assistant.py" in raised.value.__notes__
    assert failed == [raised.value]
    assert models.seen == []


async def test_an_exception_in_after_fails_the_run(load: LoadProject, models: Models) -> None:
    project = load(
        {**ASSISTANT, "middleware/assistant.py": "def after(r, c):\n    raise KeyError('x')\n"}
    )

    with pytest.raises(KeyError) as raised:
        await project.orchestrator("assistant").execute("hi")

    assert "raised by after() in middleware/assistant.py" in raised.value.__notes__
    assert len(models.seen) == 1


async def test_before_returning_none_is_an_error_naming_the_file(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": "def before(content, context):\n    content['parts'] = []\n",
        }
    )

    with pytest.raises(ProjectError) as raised:
        await project.orchestrator("assistant").execute("hi")

    assert str(raised.value).startswith(
        "middleware/assistant.py: before() returned None; return the content"
    )
    assert raised.value.path == "middleware/assistant.py"
    assert models.seen == []


async def test_after_returning_none_is_an_error_naming_the_file(load: LoadProject) -> None:
    project = load(
        {**ASSISTANT, "middleware/assistant.py": "async def after(response, context):\n    pass\n"}
    )

    with pytest.raises(ProjectError, match=r"^middleware/assistant\.py: after\(\) returned None"):
        await project.orchestrator("assistant").execute("hi")


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ("'just text'", "must return the content dict"),
        ("{'role': 'user'}", "must return the content dict"),
        ("{'role': 'model', 'parts': []}", "role 'model'"),
        ("{'parts': 'hello'}", "'parts' must be a list"),
        ("{'parts': [{'data': 'not bytes', 'mime_type': 'text/plain'}]}", "content part 0"),
        ("{'parts': [{'image': b'x'}]}", "content part 0"),
    ],
)
async def test_before_returning_invalid_content_is_an_error_naming_the_file(
    load: LoadProject, models: Models, returned: str, problem: str
) -> None:
    project = load(
        {**ASSISTANT, "middleware/assistant.py": f"def before(c, ctx):\n    return {returned}\n"}
    )

    with pytest.raises(ProjectError, match=r"^middleware/assistant\.py: before\(\)") as raised:
        await project.orchestrator("assistant").execute("hi")

    assert problem in str(raised.value)
    assert models.seen == []


# --- the context's seed keys ---------------------------------------------------------------


async def test_hooks_get_run_id_agent_name_tenant_and_timestamp(load: LoadProject) -> None:
    project = load(
        {
            **ASSISTANT,
            "middleware/assistant.py": """
                def before(content, context):
                    context["seen"] = dict(context)
                    return content
            """,
        }
    )

    result = await project.orchestrator("assistant").execute(
        "hi", context=TenantContext(tenant_id="org_1")
    )

    seen = result.state["seen"]
    assert seen["run_id"] == result.run_id
    assert seen["agent_name"] == "assistant"
    assert seen["tenant_id"] == "org_1"
    assert seen["timestamp"] == "2023-11-14T22:13:20+00:00"


async def test_without_a_tenant_the_context_has_no_tenant_id(load: LoadProject) -> None:
    project = load({**ASSISTANT, "middleware/assistant.py": "def after(r, c):\n    return r\n"})

    result = await project.orchestrator("assistant").execute("hi")

    assert "tenant_id" not in result.state
    assert result.state["agent_name"] == "assistant"


# --- which agent a file applies to ---------------------------------------------------------


async def test_in_a_pipeline_each_agent_gets_only_its_own_file(
    load: LoadProject, models: Models
) -> None:
    project = load(
        {
            "agents/writer.yaml": "instructions: Write.\n",
            "agents/editor.yaml": "instructions: Edit.\n",
            "agents/critic.yaml": "instructions: Critique.\n",
            "pipelines/review.yaml": "agents: [writer, editor, critic]\n",
            "middleware/writer.py": """
                def before(content, context):
                    content["parts"].append({"text": f"(to {context['agent_name']})"})
                    return content
            """,
            "middleware/editor.py": """
                def after(response, context):
                    return f"{context['agent_name']} says: {response}"
            """,
        }
    )

    result = await project.orchestrator("review").execute("draft")

    writer_in, editor_in, critic_in = (request.messages[-1].text for request in models.seen)
    assert writer_in == "draft\n(to writer)"
    assert editor_in == "echo: draft\n(to writer)"
    assert critic_in == "editor says: echo: echo: draft\n(to writer)"
    assert result.output == "echo: " + critic_in


async def test_a_file_without_a_matching_agent_is_ignored_with_a_debug_log(
    write_project: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from onionskin.project import load_project

    root = write_project(
        {
            **ASSISTANT,
            "middleware/analytics.py": "raise RuntimeError('never imported')\n",
            "middleware/_shared.py": "raise RuntimeError('never imported either')\n",
        }
    )

    with caplog.at_level(logging.DEBUG, logger="onionskin.project"):
        project = load_project(root)

    messages = [r.getMessage() for r in caplog.records if r.name == "onionskin.project"]
    assert messages == ["middleware/analytics.py: no agents/analytics.yaml, so it is ignored"]
    result = await project.orchestrator("assistant").execute("hi")
    assert result.output.endswith("You said: hi")
