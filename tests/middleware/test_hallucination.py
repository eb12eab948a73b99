"""HallucinationMiddleware: unknown tools, bad arguments and unsupported values, at both levels."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

import pydantic
import pytest

from onionskin import (
    ConfigError,
    HallucinationError,
    Message,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCall,
    ToolResult,
    ToolReturnPart,
    current_context,
)
from onionskin.middleware._signature_check import Signature
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.hallucination import (
    HallucinationConfig,
    HallucinationFinding,
    HallucinationMiddleware,
)
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.runtime.tool import UnknownTool
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory

Script = Callable[[ModelRequest], ScriptItem]
QUESTION = "Where is my order ORD-12345? I paid 1,200 dollars."
ANSWER = (
    'Order ORD-12345 (1200.00 USD) ships from "Blue Moon Cafe": track it at '
    "https://shop.test/track/ORD-12345/ before 2024-05-01."
)


def get_order(order_id: str, verbose: bool = False) -> dict[str, Any]:
    """Look an order up."""
    return {
        "order_id": order_id,
        "total": 1200.0,
        "store": "Blue Moon Cafe",
        "tracking": "https://SHOP.test/track/ORD-12345",
        "deliver_by": "2024-05-01",
    }


def corrected(request: ModelRequest) -> bool:
    """Whether the model's last input is the guard's correction."""
    last = request.messages[-1]
    if last.role == "user":
        return last.text.startswith("Your answer was not accepted")
    return any(
        isinstance(part, ToolReturnPart) and part.content.startswith("Refused")
        for part in last.parts
    )


def looked_up(request: ModelRequest) -> bool:
    """Whether the model's last input is a real tool result."""
    last = request.messages[-1]
    return last.role == "tool" and not corrected(request)


def script(first: ScriptItem, *, fixed: ScriptItem, final: ScriptItem = ANSWER) -> Script:
    """Answer `first`; after a correction `fixed`; after a tool result `final`."""

    def answer(request: ModelRequest) -> ScriptItem:
        if corrected(request):
            return fixed
        return final if looked_up(request) else first

    return answer


def counting(inner: Script, seen: list[ModelRequest]) -> Script:
    def answer(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return inner(request)

    return answer


def guard(**options: Any) -> HallucinationMiddleware:
    return HallucinationMiddleware(HallucinationConfig(**options))


# --- model level: each detection, corrected ------------------------------------------------


async def test_an_unknown_tool_gets_a_correction_then_the_right_call(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    first = tool_call("fetch_order", order_id="ORD-12345")
    answers = counting(script(first, fixed=tool_call("get_order", order_id="ORD-12345")), seen)
    orchestrator = orchestrator_factory(answers, middleware=[guard()], tools=[get_order])
    result = await orchestrator.execute(QUESTION)
    assert result.output == ANSWER  # sourced values, written differently: no false positive
    refusal = seen[1].messages[-1]
    assert refusal.role == "tool"
    (part,) = refusal.parts
    assert isinstance(part, ToolReturnPart)
    assert part.is_error
    assert part.call_id == first.call_id
    assert "tool 'fetch_order' does not exist" in part.content
    assert "The tools you can call: get_order" in part.content
    assert len(seen) == 3


async def test_arguments_outside_the_schema_get_a_correction(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    first = tool_call("get_order", order="ORD-12345", verbose="yes")
    answers = counting(script(first, fixed=tool_call("get_order", order_id="ORD-12345")), seen)
    orchestrator = orchestrator_factory(answers, middleware=[guard()], tools=[get_order])
    assert (await orchestrator.execute(QUESTION)).output == ANSWER
    (part,) = seen[1].messages[-1].parts
    assert isinstance(part, ToolReturnPart)
    assert "order_id: is required" in part.content
    assert "verbose: should be of type boolean, got string" in part.content
    assert "order: is not an argument of this tool" in part.content


async def test_a_made_up_id_in_the_answer_gets_a_correction(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    answers = counting(script("Your order is ORD-99999.", fixed="Your order is ORD-12345."), seen)
    orchestrator = orchestrator_factory(answers, middleware=[guard()])
    assert (await orchestrator.execute(QUESTION)).output == "Your order is ORD-12345."
    rejected, correction = seen[1].messages[-2:]
    assert (rejected.role, rejected.text) == ("assistant", "Your order is ORD-99999.")
    assert correction.role == "user"
    assert "found in no message or tool result: ORD-99999" in correction.text
    assert "look a value up" in correction.text


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("Your order is ORD-99999.", "ORD-99999"),
        (
            "Track it at https://shop.test/track/ORD-12345/extra",
            "https://shop.test/track/ORD-12345/extra",
        ),
        ("You paid $1,250.", "$1,250"),
        ("It is 3.5 kg, shipped by 'Red Lion Couriers'.", "Red Lion Couriers"),
        (
            "Your session is 123e4567-e89b-12d3-a456-426614174000.",
            "123e4567-e89b-12d3-a456-426614174000",
        ),
    ],
)
async def test_each_unsupported_value_in_an_answer_is_refused(
    orchestrator_factory: OrchestratorFactory, answer: str, value: str
) -> None:
    orchestrator = orchestrator_factory([answer], middleware=[guard(max_retries=0)])
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute(QUESTION)
    assert (refused.value.kind, refused.value.values) == ("unsupported_value", (value,))
    assert refused.value.guard == "hallucination"


@pytest.mark.parametrize(
    ("arguments", "value"),
    [
        ({"order_id": "ORD-54321"}, "ORD-54321"),
        ({"order_id": "see https://evil.test/o/1"}, "https://evil.test/o/1"),
        ({"order_id": "ORD-12345", "note": 'for "Acme Corp"'}, "Acme Corp"),
        ({"order_id": "ORD-12345", "amount": 999}, "999"),
    ],
)
async def test_each_unsupported_value_in_tool_arguments_is_refused(
    orchestrator_factory: OrchestratorFactory, arguments: dict[str, Any], value: str
) -> None:
    def get_order(order_id: str, note: str = "", amount: int = 0) -> str:
        return "found"

    orchestrator = orchestrator_factory(
        [tool_call("get_order", **arguments)],
        middleware=[guard(max_retries=0)],
        tools=[get_order],
    )
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute(QUESTION)
    assert (refused.value.kind, refused.value.values) == ("unsupported_value", (value,))


async def test_values_from_the_input_and_tool_results_pass_in_any_format(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    answer = (
        'Order ord-12345: 1,200 dollars, total 1200, from "blue moon cafe" '
        "(https://shop.test/track/ORD-12345), due 2024-05-01."
    )
    answers = script(tool_call("get_order", order_id="ORD-12345"), fixed="never", final=answer)
    orchestrator = orchestrator_factory(answers, middleware=[guard()], tools=[get_order])
    assert (await orchestrator.execute(QUESTION)).output == answer


async def test_the_models_own_earlier_words_are_no_source(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    def lookup(order_id: str) -> str:
        return "shipped"

    def answer(request: ModelRequest) -> ScriptItem:
        if request.messages[-1].role == "tool":
            return "ORD-12345 shipped; your refund id is RF-77777."
        noted = TextPart("Noting refund RF-77777.")
        return Message("assistant", [noted, tool_call("lookup", order_id="ORD-12345")])

    orchestrator = orchestrator_factory(answer, middleware=[guard(max_retries=0)], tools=[lookup])
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute(QUESTION)
    assert refused.value.values == ("RF-77777",)


async def test_a_json_answer_is_checked_by_its_values_not_its_keys(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    good = '{"order_id": "ORD-12345", "status": "shipped", "total": 1200}'
    orchestrator = orchestrator_factory([good], middleware=[guard(max_retries=0)])
    assert (await orchestrator.execute(QUESTION)).output == good
    bad = '{"order_id": "ORD-12345", "total": 1300}'
    orchestrator = orchestrator_factory([bad], middleware=[guard(max_retries=0)])
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute(QUESTION)
    assert refused.value.values == ("1300",)


async def test_an_answer_that_only_looks_like_json_is_read_as_text(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(["{oops ORD-99999"], middleware=[guard(max_retries=0)])
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute(QUESTION)
    assert refused.value.values == ("ORD-99999",)


def test_inspect_reports_findings_without_acting() -> None:
    request = ModelRequest(model=ScriptedModel(["x"]), messages=[Message.user(QUESTION)])
    response = ModelResponse(message=Message.assistant("Refund RF-77777 and ORD-12345."))
    (finding,) = guard().inspect(request, response)
    assert finding == HallucinationFinding(kind="unsupported_value", values=("RF-77777",))
    assert guard(claims_in=()).inspect(request, response) == []


# --- model level: retries, actions, mixed responses ----------------------------------------


async def test_retries_exhausted_raise_the_most_serious_finding(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    stubborn = [tool_call("fetch", order_id="ORD-1"), tool_call("get_order", order_id="ORD-777")]
    orchestrator = orchestrator_factory(
        counting(lambda request: stubborn, seen),
        middleware=[guard(max_retries=2)],
        tools=[get_order],
    )
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute(QUESTION)
    assert (refused.value.kind, refused.value.values) == ("unknown_tool", ("fetch",))
    assert "after 2 corrective retries" in str(refused.value)
    assert "ORD-777" in str(refused.value)  # every finding is in the message
    assert len(seen) == 3
    # The model saw all its attempts and every refusal.
    assert [message.role for message in seen[2].messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]


async def test_a_good_call_next_to_a_refused_one_is_answered_as_not_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    good = tool_call("get_order", order_id="ORD-12345")
    bad = tool_call("cancel_order", order_id="ORD-12345")
    answers = counting(script([good, bad], fixed=good), seen)
    orchestrator = orchestrator_factory(answers, middleware=[guard()], tools=[get_order])
    assert (await orchestrator.execute(QUESTION)).output == ANSWER
    parts = seen[1].messages[-1].parts
    assert [part.call_id for part in parts if isinstance(part, ToolReturnPart)] == [
        good.call_id,
        bad.call_id,
    ]
    assert isinstance(parts[0], ToolReturnPart)
    assert parts[0].content.startswith("Not run")
    assert isinstance(parts[1], ToolReturnPart)
    assert parts[1].content.startswith("Refused")


async def test_warn_records_each_finding_once_and_lets_the_run_go_on(
    orchestrator_factory: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    recorded: list[HallucinationFinding] = []

    def answer(request: ModelRequest) -> ScriptItem:
        if request.messages[-1].role == "tool":
            recorded.extend(current_context().guard_state["hallucination"])
            return "Done: ORD-55555."
        return tool_call("fetch_order", order_id="ORD-12345")

    orchestrator = orchestrator_factory(answer, middleware=[guard(action="warn")])
    with caplog.at_level(logging.INFO, logger="onionskin.guards.hallucination"):
        result = await orchestrator.execute(QUESTION)
    assert result.output == "Done: ORD-55555."
    # Seen at model level and again at tool level (UnknownTool): recorded once.
    assert [(f.kind, f.tool_name) for f in recorded] == [("unknown_tool", "fetch_order")]
    levels = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert levels == [
        (logging.WARNING, "hallucination guard: tool 'fetch_order' does not exist"),
        (
            logging.WARNING,
            "hallucination guard: the answer state values found in no message or tool "
            "result: ORD-55555",
        ),
    ]


async def test_log_logs_at_info_and_records_nothing(
    orchestrator_factory: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    states: list[dict[str, Any]] = []

    def answer(request: ModelRequest) -> ScriptItem:
        states.append(dict(current_context().guard_state))
        return "It costs 4242 dollars."

    orchestrator = orchestrator_factory(answer, middleware=[guard(action="log")])
    with caplog.at_level(logging.INFO, logger="onionskin.guards.hallucination"):
        assert (await orchestrator.execute(QUESTION)).output == "It costs 4242 dollars."
    assert [record.levelno for record in caplog.records] == [logging.INFO]
    assert "4242" in caplog.records[0].getMessage()
    assert states == [{}]


@pytest.mark.parametrize(
    "options",
    [
        {"check_tools": False, "check_arguments": False, "claims_in": ()},
        {"check_tools": False, "check_arguments": False, "claim_kinds": ()},
    ],
)
async def test_disabled_checks_find_nothing(
    orchestrator_factory: OrchestratorFactory, options: dict[str, Any]
) -> None:
    def answer(request: ModelRequest) -> ScriptItem:
        if request.messages[-1].role == "tool":
            return "ORD-99999 costs 5000."
        return tool_call("nope", order_id="ORD-1")

    orchestrator = orchestrator_factory(answer, middleware=[guard(**options)])
    assert (await orchestrator.execute(QUESTION)).output == "ORD-99999 costs 5000."


async def test_claims_in_answers_only_leaves_tool_arguments_alone(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    answers = script(tool_call("get_order", order_id="ORD-424242"), fixed="never")
    orchestrator = orchestrator_factory(
        answers, middleware=[guard(claims_in=("answer",))], tools=[get_order]
    )
    assert (await orchestrator.execute(QUESTION)).output == ANSWER


# --- tool level ----------------------------------------------------------------------------


class Target:
    """A plain function as a tool-call target, the shape MiddlewarePipeline gives one."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.name: str = function.__name__

    async def invoke(self, call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=self.name, value=self.function(*call.args, **call.kwargs))


class Terminal:
    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    async def __call__(self, call: ToolCall) -> ToolResult:
        self.calls.append(call)
        return ToolResult(tool_name=call.tool_name, value="ran")


def add(a: int, b: int = 1) -> int:
    return a + b


@pytest.mark.parametrize(
    "tool", [None, UnknownTool("fetch", ("get_order",))], ids=["none", "unknown"]
)
async def test_tool_level_block_refuses_an_unknown_tool(tool: Any) -> None:
    terminal = Terminal()
    call = ToolCall(tool_name="fetch", kwargs={"order_id": "1"}, tool=tool)
    with pytest.raises(HallucinationError) as refused:
        await guard().wrap_tool_call(call, terminal)
    assert (refused.value.kind, refused.value.values) == ("unknown_tool", ("fetch",))
    assert "refused the tool call" in str(refused.value)
    assert terminal.calls == []


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((), {}, "a: Field required"),
        (("x",), {}, "a: Input should be a valid integer, unable to parse string as an integer"),
        ((1,), {"c": 3}, "c: Extra inputs are not permitted"),
        ((1, 2, 3), {}, "(arguments): too many positional arguments"),
    ],
)
async def test_tool_level_block_refuses_arguments_the_function_refuses(
    args: tuple[Any, ...], kwargs: dict[str, Any], problem: str
) -> None:
    terminal = Terminal()
    call = ToolCall(tool_name="add", args=args, kwargs=kwargs, tool=Target(add))
    with pytest.raises(HallucinationError) as refused:
        await guard().wrap_tool_call(call, terminal)
    assert (refused.value.kind, refused.value.values) == ("invalid_arguments", (problem,))
    assert terminal.calls == []


async def test_inside_an_agent_tool_level_block_fails_the_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    """What the lite schema check lets pass (a bound) the tool's validation still refuses."""

    def refund(amount: Annotated[int, pydantic.Field(gt=0)]) -> str:
        return "refunded"

    orchestrator = orchestrator_factory(
        [tool_call("refund", amount=-5), "done"], middleware=[guard()], tools=[refund]
    )
    with pytest.raises(HallucinationError) as refused:
        await orchestrator.execute("refund me")
    assert refused.value.kind == "invalid_arguments"
    assert refused.value.values == ("amount: Input should be greater than 0",)


async def test_tool_level_lets_a_good_call_through_unchanged() -> None:
    terminal = Terminal()
    call = ToolCall(tool_name="add", args=("1",), kwargs={"b": 2}, tool=Target(add))
    assert (await guard().wrap_tool_call(call, terminal)).value == "ran"
    assert terminal.calls == [call]  # checked, not coerced: that is ValidationMiddleware's job


async def test_tool_level_exact_scalars_skip_pydantic_and_other_arguments_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path: arguments of exactly the annotated builtin types need no pydantic run."""
    validated: list[tuple[Any, ...]] = []
    validate = Signature.validate

    def spy(self: Signature, args: tuple[Any, ...], kwargs: Any, *, strict: bool) -> Any:
        validated.append(args)
        return validate(self, args, kwargs, strict=strict)

    monkeypatch.setattr(Signature, "validate", spy)
    for args, kwargs in [((1,), {"b": 2}), ((), {"a": 1}), ((1, 2), {})]:
        call = ToolCall(tool_name="add", args=args, kwargs=kwargs, tool=Target(add))
        assert (await guard().wrap_tool_call(call, Terminal())).value == "ran"
    assert validated == []
    lax = ToolCall(tool_name="add", args=("1",), tool=Target(add))
    assert (await guard().wrap_tool_call(lax, Terminal())).value == "ran"
    twice = ToolCall(tool_name="add", args=(1,), kwargs={"a": 2}, tool=Target(add))
    with pytest.raises(HallucinationError, match="multiple values for argument 'a'"):
        await guard().wrap_tool_call(twice, Terminal())
    assert validated == [("1",), (1,)]


async def test_tool_level_argument_checks_can_be_off_or_have_nothing_to_read() -> None:
    class NoFunction:
        name = "remote"

        async def invoke(self, call: ToolCall) -> ToolResult:
            return ToolResult(tool_name=self.name)

    bad = ToolCall(tool_name="add", kwargs={"x": 1}, tool=Target(add))
    assert (await guard(check_arguments=False).wrap_tool_call(bad, Terminal())).value == "ran"
    remote = ToolCall(tool_name="remote", kwargs={"x": 1}, tool=NoFunction())
    assert (await guard().wrap_tool_call(remote, Terminal())).value == "ran"
    unknown = ToolCall(tool_name="nope", tool=None)
    assert (await guard(check_tools=False).wrap_tool_call(unknown, Terminal())).value == "ran"


async def test_tool_level_warn_outside_a_run_logs_and_calls_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    terminal = Terminal()
    call = ToolCall(tool_name="fetch", tool=None)
    with caplog.at_level(logging.INFO, logger="onionskin.guards.hallucination"):
        assert (await guard(action="warn").wrap_tool_call(call, terminal)).value == "ran"
    assert [record.levelno for record in caplog.records] == [logging.WARNING]


async def test_through_a_middleware_pipeline() -> None:
    pipeline = MiddlewarePipeline(extra_middleware=[guard()])
    assert (await pipeline.execute(add, (2,), {"b": 3})).value == 5
    with pytest.raises(HallucinationError) as refused:
        await pipeline.execute(add, (), {"a": 1, "bogus": 2})
    assert refused.value.kind == "invalid_arguments"


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"action": "BLOCK"}, "action"),
        ({"action": None}, "action"),
        ({"check_tools": 1}, "check_tools"),
        ({"check_arguments": "no"}, "check_arguments"),
        ({"claim_kinds": ("id", "email")}, "claim_kinds"),
        ({"claim_kinds": ["id"]}, "claim_kinds"),
        ({"claims_in": ("answers",)}, "claims_in"),
        ({"ignore_numbers_up_to": -1}, "ignore_numbers_up_to"),
        ({"ignore_numbers_up_to": float("nan")}, "ignore_numbers_up_to"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        HallucinationConfig(**options)


def test_the_middleware_refuses_a_config_of_another_type() -> None:
    with pytest.raises(ConfigError, match="HallucinationConfig"):
        HallucinationMiddleware({"action": "warn"})  # type: ignore[arg-type]  # on purpose
