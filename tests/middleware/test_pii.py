"""PII detection and its actions, on model and tool inputs, outputs and tool results."""

from __future__ import annotations

import copy
import re
from types import MappingProxyType
from typing import Any

import pytest

from onionskin import (
    Agent,
    ConfigError,
    InvalidInputError,
    Message,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.pii import (
    PIIMatch,
    PIIRedactionConfig,
    PIIRedactionMiddleware,
    PIIRedactor,
)
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import ScriptedModel, tool_call
from tests.conftest import recorder

VISA = "4111 1111 1111 1111"


def redactor(**options: Any) -> PIIRedactor:
    return PIIRedactor(PIIRedactionConfig(**options))


@pytest.mark.parametrize(
    ("text", "action", "expected"),
    [
        ("mail john.doe@example.com now", "redact", "mail [EMAIL] now"),
        ("mail john.doe@example.com now", "mask", "mail j***@e***.com now"),
        ("call +1 (555) 123-4567 today", "redact", "call [PHONE] today"),
        ("call +1 (555) 123-4567 today", "mask", "call +* (***) ***-**67 today"),
        ("call +44 20 7946 0958", "redact", "call [PHONE]"),
        ("call +15551234567", "redact", "call [PHONE]"),
        ("call 555.123.4567", "mask", "call ***.***.**67"),
        (f"pay with {VISA}.", "redact", "pay with [CARD]."),
        (f"pay with {VISA}.", "mask", "pay with **** **** **** 1111."),
        ("pay with 5500-0000-0000-0004", "mask", "pay with ****-****-****-0004"),
        ("amex 378282246310005", "redact", "amex [CARD]"),
    ],
)
def test_each_kind_is_redacted_or_masked(text: str, action: str, expected: str) -> None:
    assert redactor(action=action).scrub(text) == expected


@pytest.mark.parametrize(
    ("kind", "first", "same"),
    [
        ("email", "Ann@Example.com", "ann@example.COM"),
        ("phone", "+1 555 123 4567", "+1-555-123-4567"),
        ("card", VISA, VISA.replace(" ", "-")),
    ],
)
def test_hash_is_a_stable_salted_digest_of_the_normalised_value(
    kind: str, first: str, same: str
) -> None:
    hashed = redactor(kinds=(kind,), action="hash", salt="pepper")
    digest = hashed.scrub(first)

    assert re.fullmatch(rf"\[{kind.upper()}:[0-9a-f]{{8}}\]", digest)
    assert hashed.scrub(same) == digest
    assert redactor(kinds=(kind,), action="hash", salt="pepper").scrub(first) == digest
    assert redactor(kinds=(kind,), action="hash", salt="salt").scrub(first) != digest
    assert first not in digest


def test_block_raises_with_every_path_and_kind() -> None:
    value = {"to": ["ann@example.com", "ok"], "card": f"card {VISA}", "note": "fine"}
    blocking = redactor(action="block")

    with pytest.raises(InvalidInputError) as raised:
        blocking.redact(value, path="kwargs")

    assert raised.value.errors == (("kwargs.to.0", "email"), ("kwargs.card", "card"))
    assert "ann@example.com" not in str(raised.value)
    assert value["to"] == ["ann@example.com", "ok"]


def test_block_on_scrub_redacts_instead_of_raising() -> None:
    assert redactor(action="block").scrub("ann@example.com") == "[EMAIL]"


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # one digit off: fails Luhn
        "1234 5678 9012 3456",
        "order 1234567890123456 shipped",
        "0000 0000 0000 0000",  # passes Luhn, but is no card
        "serial 12345678901234567890123",
    ],
)
def test_digit_runs_that_fail_luhn_are_not_cards(text: str) -> None:
    assert [m.kind for m in redactor().find(text)] == []


@pytest.mark.parametrize(
    "text",
    ["on 2026-01-15", "from 192.168.10.100", "version 1.2.3", "pi is 3.14159", "at 15.01.2026"],
)
def test_dates_addresses_and_numbers_are_not_phones(text: str) -> None:
    assert redactor().find(text) == []


def test_a_card_is_not_also_taken_for_a_phone() -> None:
    text = f"{VISA} then +1 (555) 123-4567"
    assert [(m.kind, m.text) for m in redactor().find(text)] == [
        ("card", VISA),
        ("phone", "+1 (555) 123-4567"),
    ]


def test_find_reports_kinds_and_positions() -> None:
    text = "write to ann@example.com"
    assert redactor().find(text) == [PIIMatch(kind="email", start=9, end=24, text=text[9:])]


def test_only_the_configured_kinds_are_detected() -> None:
    only_email = redactor(kinds=("email",))
    assert only_email.scrub(f"ann@example.com {VISA}") == f"[EMAIL] {VISA}"


def test_custom_patterns_and_per_kind_actions() -> None:
    custom = redactor(
        kinds=("email",),
        patterns={"employee_id": r"EMP-\d{6}", "ticket": re.compile(r"T#\d+")},
        action="redact",
        actions={"employee_id": "mask", "ticket": "hash"},
        salt="s",
    )

    text = custom.scrub("EMP-123456 filed T#42 for ann@example.com")

    assert re.fullmatch(r"\*\*\*-\*\*3456 filed \[TICKET:[0-9a-f]{8}\] for \[EMAIL\]", text)
    assert custom.scrub("EMP-123") == "EMP-123"


def test_redact_returns_the_same_object_when_nothing_matched() -> None:
    value = {"a": ["x", ("y", 1)], "b": None}
    assert redactor().redact(value) is value
    changed = redactor().redact({"a": ("ann@example.com", 1)})
    assert changed == {"a": ("[EMAIL]", 1)}


async def call_model(
    middleware: PIIRedactionMiddleware, request: ModelRequest, answer: str
) -> tuple[ModelResponse, list[ModelRequest]]:
    seen: list[ModelRequest] = []

    async def next(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return ModelResponse(message=Message.assistant(answer), model_name="m")

    return await middleware.wrap_model_call(request, next), seen


async def test_model_inputs_and_outputs_are_rewritten_without_touching_the_caller() -> None:
    middleware = PIIRedactionMiddleware(PIIRedactionConfig(action="mask"))
    messages = [Message.system("be nice"), Message.user("I am ann@example.com")]
    request = ModelRequest(model=ScriptedModel(["x"]), messages=messages)
    before = copy.deepcopy(messages)

    response, seen = await call_model(middleware, request, f"Card {VISA} noted")

    assert seen[0].messages[1].text == "I am a***@e***.com"
    assert seen[0].messages[0] is messages[0]  # unchanged messages are not copied
    assert seen[0] is not request
    assert request.messages == before
    assert request.messages is messages
    assert response.message.text == "Card **** **** **** 1111 noted"


async def test_a_blocked_model_input_names_its_path_and_never_reaches_the_model() -> None:
    middleware = PIIRedactionMiddleware(PIIRedactionConfig(actions={"email": "block"}))
    request = ModelRequest(
        model=ScriptedModel(["x"]),
        messages=[Message.user("hi"), Message.user("ann@example.com, +1 555 123 4567")],
    )

    with pytest.raises(InvalidInputError) as raised:
        await call_model(middleware, request, "ok")

    assert raised.value.errors == (("messages.1.text", "email"),)
    assert request.messages[1].text == "ann@example.com, +1 555 123 4567"


async def test_a_blocked_model_output_is_refused() -> None:
    middleware = PIIRedactionMiddleware(PIIRedactionConfig(action="block"))
    request = ModelRequest(model=ScriptedModel(["x"]), messages=[Message.user("hi")])

    with pytest.raises(InvalidInputError) as raised:
        await call_model(middleware, request, "reach me at ann@example.com")

    assert raised.value.errors == (("message.text", "email"),)


@pytest.mark.parametrize(("inputs", "outputs"), [(True, False), (False, True), (False, False)])
async def test_model_inputs_and_outputs_can_be_switched_off(inputs: bool, outputs: bool) -> None:
    config = PIIRedactionConfig(inputs=inputs, outputs=outputs)
    request = ModelRequest(model=ScriptedModel(["x"]), messages=[Message.user("ann@example.com")])

    response, seen = await call_model(PIIRedactionMiddleware(config), request, "bob@example.com")

    assert seen[0].messages[0].text == ("[EMAIL]" if inputs else "ann@example.com")
    assert response.message.text == ("[EMAIL]" if outputs else "bob@example.com")
    assert (seen[0] is request) is not inputs


async def test_tool_arguments_and_results_are_rewritten_without_touching_the_caller() -> None:
    middleware = PIIRedactionMiddleware()
    kwargs = {"contact": {"email": "ann@example.com", "age": 40}, "note": "hi"}
    call = ToolCall(tool_name="save", kwargs=kwargs, args=("+1 555 123 4567",))
    before = copy.deepcopy(kwargs)
    seen: list[ToolCall] = []
    value = {"owner": "bob@example.com", "cards": [VISA]}
    returned = ToolResult(tool_name="save", value=value)

    async def next(call: ToolCall) -> ToolResult:
        seen.append(call)
        return returned

    result = await middleware.wrap_tool_call(call, next)

    assert seen[0].kwargs == {"contact": {"email": "[EMAIL]", "age": 40}, "note": "hi"}
    assert seen[0].args == ("[PHONE]",)
    assert call.kwargs == before
    assert call.args == ("+1 555 123 4567",)
    assert result.value == {"owner": "[EMAIL]", "cards": ["[CARD]"]}
    assert returned.value == {"owner": "bob@example.com", "cards": [VISA]}
    assert result is not returned


async def test_a_blocked_tool_call_names_its_paths_and_does_not_run() -> None:
    middleware = PIIRedactionMiddleware(PIIRedactionConfig(action="block"))
    ran: list[ToolCall] = []

    async def next(call: ToolCall) -> ToolResult:
        ran.append(call)
        return ToolResult(tool_name=call.tool_name)

    call = ToolCall(tool_name="send", kwargs={"to": {"email": "ann@example.com"}}, args=(VISA,))
    with pytest.raises(InvalidInputError) as raised:
        await middleware.wrap_tool_call(call, next)

    assert raised.value.errors == (("kwargs.to.email", "email"), ("args.0", "card"))
    assert ran == []


@pytest.mark.parametrize("tool_results", [True, False])
async def test_tool_results_can_be_switched_off(tool_results: bool) -> None:
    middleware = PIIRedactionMiddleware(PIIRedactionConfig(tool_results=tool_results))

    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value="ann@example.com")

    result = await middleware.wrap_tool_call(ToolCall(tool_name="who"), next)

    assert result.value == ("[EMAIL]" if tool_results else "ann@example.com")


async def test_tool_results_that_are_not_json_like_pass_unchanged() -> None:
    marker = object()

    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=marker)

    result = await PIIRedactionMiddleware().wrap_tool_call(ToolCall(tool_name="x"), next)
    assert result.value is marker


async def test_in_an_agent_run_the_model_and_tools_see_only_redacted_data() -> None:
    seen: list[ModelRequest] = []
    got: list[str] = []

    async def lookup(email: str) -> str:
        """Find the user's phone."""
        got.append(email)
        return "their phone is +1 (555) 123-4567"

    answers: list[ScriptItem] = [tool_call("lookup", email="ann@example.com"), "done"]
    model = ScriptedModel(recorder(answers, seen))
    orchestrator = Orchestrator(
        Agent("helper", model=model, tools=[lookup]), middleware=[PIIRedactionMiddleware()]
    )

    result = await orchestrator.execute("Who is ann@example.com?")

    assert result.output == "done"
    assert seen[0].messages[-1].text == "Who is [EMAIL]?"
    assert got == ["[EMAIL]"]
    tool_return = seen[1].messages[-1].parts[0]
    assert getattr(tool_return, "content", None) == "their phone is [PHONE]"


async def test_around_a_plain_function_in_a_middleware_pipeline() -> None:
    def greet(name: str, email: str) -> str:
        return f"hello {name} <{email}>"

    pipeline = MiddlewarePipeline(
        extra_middleware=[PIIRedactionMiddleware(PIIRedactionConfig(action="mask"))]
    )

    result = await pipeline.execute(greet, args=("Ann",), kwargs={"email": "ann@example.com"})

    assert result.value == "hello Ann <a***@e***.com>"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"kinds": ("email", "ssn")}, "kinds"),
        ({"kinds": "email"}, "kinds"),
        ({"kinds": ()}, "kinds"),
        ({"patterns": {"bad": "(unclosed"}}, "patterns"),
        ({"patterns": {"empty": "a*"}}, "patterns"),
        ({"patterns": {"email": "x"}}, "patterns"),
        ({"patterns": {"1st": "x"}}, "patterns"),
        ({"patterns": {"n": 42}}, "patterns"),
        ({"patterns": ["x"]}, "patterns"),
        ({"action": "drop"}, "action"),
        ({"actions": {"card": "drop"}}, "actions"),
        ({"actions": {"ssn": "mask"}}, "actions"),
        ({"actions": "mask"}, "actions"),
        ({"action": "hash"}, "salt"),
        ({"actions": {"card": "hash"}}, "salt"),
        ({"salt": 7}, "salt"),
        ({"inputs": "yes"}, "inputs"),
        ({"outputs": None}, "outputs"),
        ({"tool_results": 0}, "tool_results"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        PIIRedactionConfig(**options)


def test_the_redactor_and_middleware_check_their_config_type() -> None:
    with pytest.raises(ConfigError, match="PIIRedactionConfig"):
        PIIRedactor({"action": "mask"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="PIIRedactionConfig"):
        PIIRedactionMiddleware("mask")  # type: ignore[arg-type]


def test_the_config_cannot_be_changed_through_its_mappings() -> None:
    actions = {"card": "block"}
    config = PIIRedactionConfig(actions=actions)  # type: ignore[arg-type]
    actions["card"] = "redact"
    assert config.actions["card"] == "block"
    with pytest.raises(TypeError):
        config.actions["email"] = "mask"  # type: ignore[index]


@pytest.mark.parametrize(
    ("kinds", "text", "found"),
    [
        (("phone",), "call 555-1234", ["phone"]),  # the fewest digits a phone has: 7
        (("phone",), "call 55-1234", []),
        (("card",), "pay 4222222222222 now", ["card"]),  # the fewest a card has: 13
        (("card",), "pay 422222222222 now", []),
        (("email", "card"), "pay 4222222222222 now", ["card"]),
        (("email",), "a@b.co", ["email"]),
        (("email",), "no at sign 4111111111111111", []),
    ],
)
def test_text_with_the_fewest_digits_a_kind_needs_is_still_scanned(
    kinds: tuple[str, ...], text: str, found: list[str]
) -> None:
    assert [match.kind for match in redactor(kinds=kinds).find(text)] == found


def test_custom_patterns_are_sought_in_text_without_digits_or_at_signs() -> None:
    custom = redactor(patterns={"codename": r"PROJECT [A-Z]+"})
    assert custom.scrub("see PROJECT ORION soon") == "see [CODENAME] soon"
    assert redactor(kinds=(), patterns={"codename": "ORION"}).scrub("ORION") == "[CODENAME]"


def test_only_what_changed_is_rebuilt_and_paths_name_the_deep_find() -> None:
    keep = {"a": "x", "n": [1, 2]}
    empty: list[str] = []
    value = {
        "keep": keep,
        "empty": empty,
        "view": MappingProxyType({"e": "ann@example.com"}),
        "deep": [{"m": ("ok", "ann@example.com")}],
    }

    result = redactor().redact(value)

    assert result["keep"] is keep
    assert result["empty"] is empty
    assert result["view"] == {"e": "[EMAIL]"}
    assert result["deep"] == [{"m": ("ok", "[EMAIL]")}]
    with pytest.raises(InvalidInputError) as raised:
        redactor(action="block").redact(value, path="kwargs")
    assert raised.value.errors == (("kwargs.view.e", "email"), ("kwargs.deep.0.m.1", "email"))


async def test_a_tool_call_with_nothing_to_rewrite_passes_as_it_came() -> None:
    middleware = PIIRedactionMiddleware()
    call = ToolCall(tool_name="lookup", kwargs={"order_id": "A1", "qty": 3}, args=())
    returned = ToolResult(tool_name="lookup", value={"status": "shipped", "eta_days": 2})
    seen: list[ToolCall] = []

    async def next(call: ToolCall) -> ToolResult:
        seen.append(call)
        return returned

    assert await middleware.wrap_tool_call(call, next) is returned
    assert seen == [call]
    assert seen[0] is call
