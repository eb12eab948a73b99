"""ValidationMiddleware: arguments and results by pydantic models or type hints, final answers."""

from __future__ import annotations

import enum
import inspect
import pickle
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import pydantic
import pytest

from onionskin import (
    ConfigError,
    InvalidInputError,
    ModelRequest,
    RunContext,
    ToolCall,
    ToolResult,
)
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.validation import ValidationConfig, ValidationMiddleware
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import tool_call
from tests.conftest import OrchestratorFactory, recorder

Next = Callable[[ToolCall], Awaitable[ToolResult]]


class Address(pydantic.BaseModel):
    street: str
    zip: str


class Shipment(pydantic.BaseModel):
    name: str
    address: Address
    parcels: int = 1


class Target:
    """A plain function as a tool-call target, the shape MiddlewarePipeline gives one."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.name: str = function.__name__

    async def invoke(self, call: ToolCall) -> ToolResult:
        value = self.function(*call.args, **call.kwargs)
        if inspect.isawaitable(value):
            value = await value
        return ToolResult(tool_name=self.name, value=value, call_id=call.call_id)


class Terminal:
    """A plain async `next` that records the calls it got and runs their target."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    async def __call__(self, call: ToolCall) -> ToolResult:
        self.calls.append(call)
        assert call.tool is not None
        return await call.tool.invoke(call)


def call_of(function: Callable[..., Any], *args: Any, **kwargs: Any) -> ToolCall:
    return ToolCall(tool_name=function.__name__, args=args, kwargs=kwargs, tool=Target(function))


def ship(name: str, address: Address, parcels: int = 1) -> str:
    return f"{name}:{address.zip}:{parcels}"


async def ship_async(name: str, address: Address, parcels: int = 1) -> str:
    return f"{name}:{address.zip}:{parcels}"


# --- type hints ----------------------------------------------------------------------------


@pytest.mark.parametrize("function", [ship, ship_async])
async def test_type_hints_validate_and_coerce_sync_and_async_functions(
    function: Callable[..., Any],
) -> None:
    terminal = Terminal()
    call = call_of(function, "Ann", address={"street": "Main", "zip": "0150"}, parcels="2")
    result = await ValidationMiddleware().wrap_tool_call(call, terminal)
    assert result.value == "Ann:0150:2"
    (passed,) = terminal.calls
    assert passed.args == ("Ann",)
    assert passed.kwargs["parcels"] == 2
    assert passed.kwargs["address"] == Address(street="Main", zip="0150")
    # The caller's call is untouched: the coerced values went on in a copy.
    assert call.kwargs == {"address": {"street": "Main", "zip": "0150"}, "parcels": "2"}


@pytest.mark.parametrize("function", [ship, ship_async])
async def test_bad_arguments_raise_with_field_paths_before_the_function_runs(
    function: Callable[..., Any],
) -> None:
    terminal = Terminal()
    call = call_of(function, name="Ann", address={"street": "Main", "zip": 150}, parcels="x")
    with pytest.raises(InvalidInputError) as refused:
        await ValidationMiddleware().wrap_tool_call(call, terminal)
    assert refused.value.errors == (
        ("address.zip", "Input should be a valid string"),
        ("parcels", "Input should be a valid integer, unable to parse string as an integer"),
    )
    assert "address.zip" in str(refused.value)
    assert terminal.calls == []


async def test_missing_unknown_and_surplus_arguments_are_refused() -> None:
    middleware = ValidationMiddleware()
    with pytest.raises(InvalidInputError) as refused:
        await middleware.wrap_tool_call(call_of(ship, name="Ann", colour="red"), Terminal())
    assert refused.value.errors == (
        ("address", "Field required"),
        ("colour", "Extra inputs are not permitted"),
    )
    with pytest.raises(InvalidInputError) as refused:
        await middleware.wrap_tool_call(call_of(ship, "a", {}, 1, 2), Terminal())
    assert refused.value.errors == (("", "too many positional arguments"),)


async def test_positional_star_args_and_kwargs_keep_their_shape_when_coerced() -> None:
    def total(first: int, /, *more: int, scale: float = 1.0, **tags: str) -> float:
        return (first + sum(more)) * scale

    terminal = Terminal()
    call = call_of(total, "1", "2", "3", scale="0.5", colour="red")
    result = await ValidationMiddleware().wrap_tool_call(call, terminal)
    assert result.value == 3.0
    assert terminal.calls[0].args == (1, 2, 3)
    assert terminal.calls[0].kwargs == {"scale": 0.5, "colour": "red"}
    with pytest.raises(InvalidInputError) as refused:
        await ValidationMiddleware().wrap_tool_call(call_of(total, 1, "x", size=3), Terminal())
    assert [path for path, _ in refused.value.errors] == ["more.0", "tags.size"]


async def test_coerce_false_checks_but_passes_the_original_values() -> None:
    terminal = Terminal()
    middleware = ValidationMiddleware(ValidationConfig(coerce=False, validate_output=False))
    call = call_of(ship, "Ann", address=Address(street="Main", zip="1"), parcels="2")
    await middleware.wrap_tool_call(call, terminal)
    assert terminal.calls[0] is call


async def test_strict_mode_refuses_what_lax_mode_would_coerce() -> None:
    middleware = ValidationMiddleware(ValidationConfig(strict=True))
    with pytest.raises(InvalidInputError) as refused:
        await middleware.wrap_tool_call(
            call_of(ship, "Ann", address={"street": "M", "zip": "1"}, parcels="2"), Terminal()
        )
    assert refused.value.errors == (("parcels", "Input should be a valid integer"),)


async def test_calls_without_a_function_or_hints_pass_unchecked() -> None:
    def untyped(a, b=2):  # type: ignore[no-untyped-def]  # an unannotated function on purpose
        return a

    async def echo(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=call.kwargs)

    unknown = ToolCall(tool_name="nope", kwargs={"x": object()}, tool=None)
    assert (await ValidationMiddleware().wrap_tool_call(unknown, echo)).value == unknown.kwargs
    result = await ValidationMiddleware().wrap_tool_call(call_of(untyped, "x", b=[1]), Terminal())
    assert result.value == "x"


async def test_a_run_context_parameter_is_not_validated_nor_required(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    def lookup(ctx: RunContext, order: int) -> str:
        return f"{ctx.run_id != ''}:{order + 1}"

    seen: list[ModelRequest] = []
    script = recorder([tool_call("lookup", order="41"), "done"], seen)
    orchestrator = orchestrator_factory(script, middleware=[ValidationMiddleware()], tools=[lookup])
    assert (await orchestrator.execute("go")).output == "done"
    assert seen[1].messages[-1].parts[0].content == "True:42"  # type: ignore[union-attr]


async def test_inside_an_agent_bad_arguments_fail_the_run_with_paths(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    orchestrator = orchestrator_factory(
        [tool_call("ship", name="Ann", address={"street": "Main"}), "done"],
        middleware=[ValidationMiddleware()],
        tools=[ship],
    )
    with pytest.raises(InvalidInputError) as refused:
        await orchestrator.execute("go")
    assert refused.value.errors == (("address.zip", "Field required"),)


async def test_the_functions_own_exception_propagates_unchanged() -> None:
    boom = ValueError("boom")

    def broken(x: int) -> int:
        raise boom

    with pytest.raises(ValueError, match="boom") as raised:
        await ValidationMiddleware().wrap_tool_call(call_of(broken, x=1), Terminal())
    assert raised.value is boom


async def test_through_a_middleware_pipeline() -> None:
    pipeline = MiddlewarePipeline(extra_middleware=[ValidationMiddleware()])
    result = await pipeline.execute(ship_async, ("Ann",), {"address": {"street": "M", "zip": "9"}})
    assert result.value == "Ann:9:1"
    with pytest.raises(InvalidInputError):
        await pipeline.execute(ship_async, ("Ann",), {"address": "nowhere"})


# --- pydantic models -----------------------------------------------------------------------


async def test_an_input_model_validates_kwargs_and_positional_arguments() -> None:
    middleware = ValidationMiddleware(ValidationConfig(input_model=Shipment))
    terminal = Terminal()
    call = call_of(ship, "Ann", address={"street": "Main", "zip": "0150"}, parcels="3")
    assert (await middleware.wrap_tool_call(call, terminal)).value == "Ann:0150:3"
    assert terminal.calls[0].kwargs["parcels"] == 3
    assert terminal.calls[0].args == ("Ann",)
    with pytest.raises(InvalidInputError) as refused:
        await middleware.wrap_tool_call(call_of(ship, name=5, address={"zip": 1}), Terminal())
    assert [path for path, _ in refused.value.errors] == ["name", "address.street", "address.zip"]


async def test_an_input_model_without_a_signature_takes_kwargs_only() -> None:
    middleware = ValidationMiddleware(ValidationConfig(input_model=Address))

    async def echo(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=call.kwargs)

    call = ToolCall(tool_name="where", kwargs={"street": "Main", "zip": "1"})
    assert (await middleware.wrap_tool_call(call, echo)).value == call.kwargs
    with pytest.raises(InvalidInputError, match="positional"):
        await middleware.wrap_tool_call(ToolCall(tool_name="where", args=("Main",)), echo)


async def test_outputs_are_checked_against_the_return_annotation_and_coerced() -> None:
    def count(text: str) -> int:
        return "12"  # type: ignore[return-value]  # a tool that breaks its promise

    def broken(text: str) -> Address:
        return {"street": "Main"}  # type: ignore[return-value]  # a tool that breaks its promise

    result = await ValidationMiddleware().wrap_tool_call(call_of(count, "a"), Terminal())
    assert result.value == 12
    with pytest.raises(InvalidInputError) as refused:
        await ValidationMiddleware().wrap_tool_call(call_of(broken, "a"), Terminal())
    assert refused.value.errors == (("zip", "Field required"),)
    assert "returned an invalid value" in str(refused.value)


class Point:
    """A class pydantic knows nothing about: checked with isinstance."""

    def __init__(self, x: int) -> None:
        self.x = x


async def test_classes_pydantic_does_not_know_are_checked_by_isinstance() -> None:
    def make(x: int) -> Point:
        return Point(x) if x else "origin"  # type: ignore[return-value]  # broken on purpose

    assert (await ValidationMiddleware().wrap_tool_call(call_of(make, 1), Terminal())).value.x == 1
    with pytest.raises(InvalidInputError) as refused:
        await ValidationMiddleware().wrap_tool_call(call_of(make, 0), Terminal())
    assert refused.value.errors == (("", "Input should be an instance of Point"),)


async def test_an_unhashable_callable_object_is_validated_too() -> None:
    class Adder:
        __name__ = "adder"
        __hash__ = None  # type: ignore[assignment]  # unhashable, like a dataclass with eq

        def __call__(self, a: int) -> int:
            return a + 1

    result = await ValidationMiddleware().wrap_tool_call(call_of(Adder(), "41"), Terminal())
    assert result.value == 42


async def test_an_output_model_overrides_the_annotation_and_errors_skip_it() -> None:
    middleware = ValidationMiddleware(ValidationConfig(output_model=list[Address]))

    async def fixed(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name="x", value=[{"street": "M", "zip": "1"}, {"street": "N"}])

    with pytest.raises(InvalidInputError) as refused:
        await middleware.wrap_tool_call(ToolCall(tool_name="x"), fixed)
    assert refused.value.errors == (("1.zip", "Field required"),)

    async def failed(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name="x", error="unknown tool 'x'")

    assert (await middleware.wrap_tool_call(ToolCall(tool_name="x"), failed)).error is not None


async def test_disabled_checks_let_anything_through() -> None:
    middleware = ValidationMiddleware(ValidationConfig(validate_input=False, validate_output=False))

    def count(text: str) -> int:
        return text  # type: ignore[return-value]  # a tool that breaks its promise

    assert (await middleware.wrap_tool_call(call_of(count, 5), Terminal())).value == 5


# --- model output --------------------------------------------------------------------------


def answering(*answers: str) -> tuple[Callable[[ModelRequest], ScriptItem], list[ModelRequest]]:
    seen: list[ModelRequest] = []
    return recorder(list(answers), seen), seen


async def test_a_bad_final_answer_gets_a_corrective_message_then_passes(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    script, seen = answering('{"street": "Main"}', '```json\n{"street": "Main", "zip": "1"}\n```')
    validation = ValidationMiddleware(ValidationConfig(model_output=Address))
    result = await orchestrator_factory(script, middleware=[validation]).execute("where?")
    assert result.output.startswith("```json")
    correction = seen[1].messages[-1]
    assert correction.role == "user"
    assert "- zip: Field required" in correction.text
    assert '"required": ["street", "zip"]' in correction.text  # the schema is quoted
    assert seen[1].messages[-2].text == '{"street": "Main"}'
    assert len(seen[0].messages) == 1


async def test_retries_exhausted_raise_with_the_field_paths(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    script, seen = answering("not json", '{"zip": 5}', "never asked")
    validation = ValidationMiddleware(ValidationConfig(model_output=Address, max_retries=1))
    with pytest.raises(InvalidInputError) as refused:
        await orchestrator_factory(script, middleware=[validation]).execute("where?")
    assert refused.value.errors == (
        ("street", "Field required"),
        ("zip", "Input should be a valid string"),
    )
    assert len(seen) == 2
    assert "Invalid JSON" in seen[1].messages[-1].text


async def test_tool_calls_pass_and_no_model_output_means_no_check(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    def where() -> str:
        return "Main 1"

    seen: list[ModelRequest] = []
    script = recorder([tool_call("where"), '{"street": "Main", "zip": "1"}'], seen)
    strict = ValidationMiddleware(ValidationConfig(model_output=Address, max_retries=0))
    result = await orchestrator_factory(script, middleware=[strict], tools=[where]).execute("go")
    assert result.output == '{"street": "Main", "zip": "1"}'
    assert len(seen) == 2
    plain = orchestrator_factory(["free text"], middleware=[ValidationMiddleware()])
    assert (await plain.execute("go")).output == "free text"


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"validate_input": "yes"}, "validate_input"),
        ({"validate_output": 1}, "validate_output"),
        ({"coerce": None}, "coerce"),
        ({"strict": "no"}, "strict"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"input_model": dict}, "input_model"),
        ({"input_model": Address(street="a", zip="b")}, "input_model"),
        ({"output_model": "Address"}, "output_model"),
        ({"output_model": 5}, "output_model"),
        ({"model_output": Address(street="a", zip="b")}, "model_output"),
        ({"input_model": Address, "validate_input": False}, "input_model"),
        ({"output_model": Address, "validate_output": False}, "output_model"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        ValidationConfig(**options)


def test_the_middleware_refuses_a_config_of_another_type() -> None:
    with pytest.raises(ConfigError, match="ValidationConfig"):
        ValidationMiddleware({"validate_input": True})  # type: ignore[arg-type]  # on purpose


async def test_unreadable_type_hints_raise_config_error() -> None:
    def broken(x: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821  # on purpose
        return None

    with pytest.raises(ConfigError, match="signature"):
        await ValidationMiddleware().wrap_tool_call(call_of(broken, 1), Terminal())


async def test_annotations_pydantic_cannot_read_raise_config_error() -> None:
    def odd(x: int) -> None:
        return None

    odd.__annotations__["x"] = {"a": int}  # not a type: pydantic fails with a KeyError

    with pytest.raises(ConfigError, match="cannot validate the arguments"):
        await ValidationMiddleware().wrap_tool_call(call_of(odd, 1), Terminal())


async def test_a_model_output_without_a_json_schema_still_reports_errors(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    script, seen = answering('{"x": 1}', '{"x": 2}')
    validation = ValidationMiddleware(ValidationConfig(model_output=Point))
    with pytest.raises(InvalidInputError):
        await orchestrator_factory(script, middleware=[validation]).execute("go")
    assert "JSON schema" not in seen[1].messages[-1].text


def test_invalid_input_error_keeps_its_paths_through_pickling() -> None:
    error = InvalidInputError("bad", errors=(("address.zip", "Field required"),))
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.errors) == ("bad", (("address.zip", "Field required"),))


# --- the fast path: exact builtin scalars --------------------------------------------------


# Any: a parameter that takes anything, as an unannotated one does.
def label(
    name: str, count: int = 1, *, ratio: float = 1.0, flag: bool = False, note: Any = None
) -> str:
    return f"{name}:{count}:{ratio}:{flag}"


async def test_exact_scalars_go_on_as_they_are_without_a_copy() -> None:
    call = call_of(label, "a", count=2, ratio=0.5, flag=True, note=object())
    answer = ToolResult(tool_name="label", value="a:2:0.5:True")
    passed: list[ToolCall] = []

    async def terminal(sent: ToolCall) -> ToolResult:
        passed.append(sent)
        return answer

    assert await ValidationMiddleware().wrap_tool_call(call, terminal) is answer
    assert passed == [call]
    assert passed[0] is call


class Name(str):
    """A str subclass: pydantic hands back a plain str."""


class Count(enum.IntEnum):
    TWO = 2


@pytest.mark.parametrize(
    ("kwargs", "field", "coerced"),
    [
        ({"name": Name("a")}, "name", "a"),
        ({"name": "a", "count": True}, "count", 1),
        ({"name": "a", "count": Count.TWO}, "count", 2),
        ({"name": "a", "ratio": 1}, "ratio", 1.0),
        ({"name": "a", "flag": 1}, "flag", True),
    ],
)
async def test_values_of_another_type_than_annotated_are_still_coerced(
    kwargs: dict[str, Any], field: str, coerced: object
) -> None:
    terminal = Terminal()
    await ValidationMiddleware().wrap_tool_call(call_of(label, **kwargs), terminal)
    value = terminal.calls[0].kwargs[field]
    assert (type(value), value) == (type(coerced), coerced)
    assert type(kwargs[field]) is not type(coerced)  # the caller's values are untouched


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("a",), {"name": "b"}, ("", "multiple values for argument 'name'")),
        ((), {"count": 2}, ("name", "Field required")),
        ((), {"name": "a", "colour": "red"}, ("colour", "Extra inputs are not permitted")),
        (("a", 1, 2.0), {}, ("", "too many positional arguments")),
        (
            (),
            {"name": "a", "count": "x"},
            ("count", "Input should be a valid integer, unable to parse string as an integer"),
        ),
    ],
)
async def test_arguments_the_fast_path_cannot_vouch_for_are_still_refused(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: tuple[str, str]
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        await ValidationMiddleware().wrap_tool_call(call_of(label, *args, **kwargs), Terminal())
    assert refused.value.errors == (error,)


async def test_a_constrained_str_is_checked_even_when_its_value_is_a_str() -> None:
    def code(value: Annotated[str, pydantic.Field(max_length=3)]) -> str:
        return value

    with pytest.raises(InvalidInputError) as refused:
        await ValidationMiddleware().wrap_tool_call(call_of(code, value="toolong"), Terminal())
    assert refused.value.errors == (("value", "String should have at most 3 characters"),)


async def test_a_result_of_exactly_the_annotated_type_is_passed_on_as_it_is() -> None:
    def count(text: str) -> int:
        return len(text)

    answer = ToolResult(tool_name="count", value=3)

    async def exact(call: ToolCall) -> ToolResult:
        return answer

    async def flag(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name="count", value=True)

    middleware = ValidationMiddleware(ValidationConfig(strict=True))
    assert await middleware.wrap_tool_call(call_of(count, "abc"), exact) is answer
    # A bool is no int in strict mode: the fast path does not hide that.
    with pytest.raises(InvalidInputError, match="valid integer"):
        await middleware.wrap_tool_call(call_of(count, "abc"), flag)
