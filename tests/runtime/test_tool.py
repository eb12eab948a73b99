from __future__ import annotations

import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
import pytest

from onionskin import (
    ConfigError,
    ModelRequest,
    RunContext,
    Tool,
    ToolCall,
    ToolResult,
    ToolReturnPart,
    current_context,
)
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory

Next = Callable[[ToolCall], Awaitable[ToolResult]]


class Address(pydantic.BaseModel):
    street: str
    zip: int


def search(query: str, limit: int = 5, exact: bool = False) -> list[str]:
    """Search the catalogue for products.

    The model should not read this second paragraph.
    """
    return [query] * limit


def ship(name: str, address: Address) -> str:
    """Ship a parcel."""
    return f"{name} at {address.street} ({address.zip})"


def call_then_answer(
    call: ScriptItem, answer: str = "done"
) -> Callable[[ModelRequest], ScriptItem]:
    """Call `call` on the first step, answer `answer` once a tool result came back."""

    def script(request: ModelRequest) -> ScriptItem:
        return answer if request.messages[-1].role == "tool" else call

    return script


# --- schema -----------------------------------------------------------------------------


def test_schema_has_types_required_fields_and_defaults_from_type_hints() -> None:
    schema = Tool(search).definition.parameters

    assert schema["type"] == "object"
    assert schema["required"] == ["query"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert set(properties) == {"query", "limit", "exact"}
    assert properties["query"]["type"] == "string"
    assert "default" not in properties["query"]
    assert properties["limit"]["type"] == "integer"
    assert properties["limit"]["default"] == 5
    assert properties["exact"]["type"] == "boolean"
    assert properties["exact"]["default"] is False


def test_schema_describes_nested_models_and_containers() -> None:
    def tag(items: list[str], address: Address, note: str | None = None) -> None:
        """Tag items."""

    schema = Tool(tag).definition.parameters

    assert schema["required"] == ["items", "address"]
    assert schema["properties"]["items"]["type"] == "array"
    assert schema["properties"]["items"]["items"] == {"type": "string"}
    assert schema["properties"]["note"]["default"] is None
    address = schema["$defs"]["Address"]
    assert address["required"] == ["street", "zip"]
    assert address["properties"]["zip"]["type"] == "integer"


def test_definition_takes_name_and_first_docstring_paragraph() -> None:
    definition = Tool(search).definition

    assert definition.name == "search"
    assert definition.description == "Search the catalogue for products."


def test_description_keeps_a_first_paragraph_that_spans_lines() -> None:
    def report(day: str) -> str:
        """Build the daily report
        for one day.

        Args:
            day: the day.
        """
        return day

    assert Tool(report).definition.description == "Build the daily report\nfor one day."


def test_explicit_name_and_description_win_over_the_function() -> None:
    tool = Tool(search, name="find-products", description="Find products.")

    assert tool.name == "find-products"
    assert tool.definition.name == "find-products"
    assert tool.definition.description == "Find products."


def test_explicit_empty_description_is_kept() -> None:
    assert Tool(search, description="").definition.description == ""


def test_function_without_docstring_has_empty_description() -> None:
    def bare(x: int) -> int:
        return x

    assert Tool(bare).definition.description == ""


def test_unannotated_parameter_accepts_any_value() -> None:
    def echo(value, times: int = 1):  # type: ignore[no-untyped-def]  # the point of the test
        return [value] * times

    tool = Tool(echo)

    assert tool.definition.parameters["required"] == ["value"]
    assert "type" not in tool.definition.parameters["properties"]["value"]


# --- RunContext parameters -------------------------------------------------------------------


def test_run_context_parameter_is_hidden_from_the_schema() -> None:
    def greet(ctx: RunContext, greeting: str) -> str:
        return f"{greeting} {ctx.run_id}"

    schema = Tool(greet).definition.parameters

    assert set(schema["properties"]) == {"greeting"}
    assert schema["required"] == ["greeting"]


async def test_run_context_parameter_receives_the_runs_context(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    received: list[RunContext] = []

    def greet(greeting: str, ctx: RunContext) -> str:
        received.append(ctx)
        return f"{greeting} {ctx.run_id} {ctx.state['user']}"

    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return call_then_answer(tool_call("greet", greeting="hi"))(request)

    orchestrator = orchestrator_factory(script, tools=[greet])
    result = await orchestrator.execute("hello", run_id="run-42", state={"user": "Ada"})

    assert result.output == "done"
    assert len(received) == 1
    assert received[0].run_id == "run-42"
    assert received[0].state is result.state
    returned = seen[1].messages[-1].parts[0]
    assert isinstance(returned, ToolReturnPart)
    assert returned.content == "hi run-42 Ada"
    assert returned.is_error is False


async def test_model_cannot_supply_the_context_parameter() -> None:
    called: list[object] = []

    def greet(ctx: RunContext, greeting: str) -> str:
        called.append(ctx)
        return greeting

    result = await Tool(greet).invoke(
        ToolCall(tool_name="greet", kwargs={"ctx": "forged", "greeting": "hi"})
    )

    assert result.status == "error"
    assert result.error is not None
    assert "ctx" in result.error
    assert called == []


# --- argument validation ---------------------------------------------------------------------


async def test_valid_arguments_are_coerced_and_nested_models_built() -> None:
    result = await Tool(ship).invoke(
        ToolCall(
            tool_name="ship",
            kwargs={"name": "Ada", "address": {"street": "Main St", "zip": "12345"}},
            call_id="c1",
        )
    )

    assert result.status == "success"
    assert result.error is None
    assert result.value == "Ada at Main St (12345)"
    assert result.call_id == "c1"
    assert result.tool_name == "ship"


async def test_invalid_nested_argument_gives_an_error_result_naming_the_field_path() -> None:
    result = await Tool(ship).invoke(
        ToolCall(
            tool_name="ship",
            kwargs={"name": "Ada", "address": {"street": "Main St", "zip": "not a number"}},
            call_id="c7",
        )
    )

    assert result.status == "error"
    assert result.value is None
    assert result.call_id == "c7"
    assert result.error is not None
    assert result.error.startswith("invalid arguments for tool 'ship': ")
    assert "address.zip: " in result.error
    assert "; " not in result.error  # only the bad field is reported


async def test_missing_required_argument_is_named() -> None:
    result = await Tool(ship).invoke(
        ToolCall(tool_name="ship", kwargs={"address": {"street": "x", "zip": 1}})
    )

    assert result.error is not None
    assert "name: Field required" in result.error


async def test_every_invalid_field_is_reported() -> None:
    result = await Tool(search).invoke(
        ToolCall(tool_name="search", kwargs={"limit": "many", "exact": "perhaps"})
    )

    assert result.error is not None
    for field in ("query", "limit", "exact"):
        assert f"{field}: " in result.error


async def test_unknown_extra_argument_is_refused_and_the_function_not_called() -> None:
    calls: list[str] = []

    def lookup(order_id: str) -> str:
        calls.append(order_id)
        return "shipped"

    result = await Tool(lookup).invoke(
        ToolCall(tool_name="lookup", kwargs={"order_id": "A1", "colour": "red"})
    )

    assert result.status == "error"
    assert result.error is not None
    assert "colour" in result.error
    assert calls == []


async def test_positional_arguments_bind_to_parameters_in_order() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    result = await Tool(add).invoke(ToolCall(tool_name="add", args=(2,), kwargs={"b": "3"}))

    assert result.value == 5


async def test_too_many_positional_arguments_give_an_error_result() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    result = await Tool(add).invoke(ToolCall(tool_name="add", args=(1, 2, 3)))

    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("add: ")


# --- construction errors ---------------------------------------------------------------------


def test_var_positional_parameter_is_refused() -> None:
    def total(*numbers: int) -> int:
        return sum(numbers)

    with pytest.raises(ConfigError, match=r"\*numbers"):
        Tool(total)


def test_var_keyword_parameter_is_refused() -> None:
    def configure(**options: str) -> None:
        return None

    with pytest.raises(ConfigError, match=r"\*options"):
        Tool(configure)


@pytest.mark.parametrize(
    "name",
    ["1st", "has space", "dotted.name", "a/b", "../up", "x" * 65, "émoji", "tab\t"],
)
def test_bad_tool_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="tool name"):
        Tool(search, name=name)


def test_explicit_empty_tool_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="tool name"):
        Tool(search, name="")


@pytest.mark.parametrize("name", ["a", "_private", "get-weather", "T2", "x" * 64])
def test_good_tool_names_are_accepted(name: str) -> None:
    assert Tool(search, name=name).definition.name == name


def test_lambda_needs_an_explicit_name() -> None:
    with pytest.raises(ConfigError, match="<lambda>"):
        Tool(lambda x: x)


def test_non_callable_is_refused() -> None:
    not_a_function: Any = "search"
    with pytest.raises(ConfigError, match="needs a function"):
        Tool(not_a_function)


def test_unresolvable_type_hint_is_a_config_error() -> None:
    def broken(x: int) -> int:
        return x

    broken.__annotations__ = {"x": "NoSuchType"}

    with pytest.raises(ConfigError, match="type hints"):
        Tool(broken)


# --- execution ---------------------------------------------------------------------------


async def test_sync_tool_runs_in_a_worker_thread_and_sees_the_context(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, str]] = []

    def probe() -> str:
        seen.append((threading.get_ident(), current_context().run_id))
        return "ok"

    orchestrator = orchestrator_factory(call_then_answer(tool_call("probe")), tools=[probe])
    result = await orchestrator.execute("go", run_id="run-sync")

    assert result.output == "done"
    assert len(seen) == 1
    thread, run_id = seen[0]
    assert thread != loop_thread
    assert run_id == "run-sync"


async def test_async_tool_runs_on_the_event_loop_thread(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, str]] = []

    async def probe() -> str:
        seen.append((threading.get_ident(), current_context().run_id))
        return "ok"

    orchestrator = orchestrator_factory(call_then_answer(tool_call("probe")), tools=[probe])
    await orchestrator.execute("go", run_id="run-async")

    assert seen == [(loop_thread, "run-async")]


async def test_tool_value_is_returned_with_its_timing() -> None:
    async def numbers() -> dict[str, int]:
        return {"one": 1}

    result = await Tool(numbers).invoke(ToolCall(tool_name="numbers", call_id="n1"))

    assert result.value == {"one": 1}
    assert result.status == "success"
    assert result.execution_time_ms >= 0.0
    assert result.call_id == "n1"


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_exception_inside_a_tool_reaches_the_caller_unchanged(
    orchestrator_factory: OrchestratorFactory, kind: str
) -> None:
    error = LookupError("warehouse offline")

    def fail_sync() -> str:
        raise error

    async def fail_async() -> str:
        raise error

    tool = Tool(fail_sync if kind == "sync" else fail_async, name="fail")
    orchestrator = orchestrator_factory(call_then_answer(tool_call("fail")), tools=[tool])

    with pytest.raises(LookupError) as info:
        await orchestrator.execute("go")

    assert info.value is error


async def test_exception_inside_a_tool_passes_through_tool_middleware_unchanged(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    error = RuntimeError("disk full")
    seen: list[BaseException] = []

    async def watch(call: ToolCall, next: Next) -> ToolResult:
        try:
            return await next(call)
        except Exception as caught:
            seen.append(caught)
            raise

    def fail() -> str:
        raise error

    orchestrator = orchestrator_factory(
        call_then_answer(tool_call("fail")), tools=[fail], middleware=[watch]
    )

    with pytest.raises(RuntimeError) as info:
        await orchestrator.execute("go")

    assert info.value is error
    assert seen == [error]


# --- bugs ------------------------------------------------------------------------------------


async def test_positional_only_parameters_are_passed_by_position() -> None:
    def double(x: int, /) -> int:
        return 2 * x

    tool = Tool(double)
    result = await tool.invoke(ToolCall(tool_name="double", kwargs={"x": 21}))
    assert result.value == 42


async def test_underscore_parameters_work() -> None:
    def fetch(_token: str) -> str:
        return _token

    tool = Tool(fetch)
    assert "_token" in tool.definition.parameters["properties"]
    result = await tool.invoke(ToolCall(tool_name="fetch", kwargs={"_token": "t"}))
    assert result.value == "t"


def test_parameter_named_like_a_basemodel_attribute_builds_without_warnings() -> None:
    def query(sql: str, schema: str = "public") -> str:
        return f"{schema}: {sql}"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tool = Tool(query)

    assert set(tool.definition.parameters["properties"]) == {"sql", "schema"}
