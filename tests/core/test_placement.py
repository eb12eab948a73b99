"""Declared positions: outermost, innermost, before / after a named middleware; their errors."""

from __future__ import annotations

from typing import Any

import pytest

from onionskin import ConfigError, ModelRequest, Orchestrator, RunContext
from onionskin.core.placement import StackContract, place
from onionskin.testing import ScriptedModel
from tests.conftest import OrchestratorFactory


class Named:
    """Logs its name before each model call."""

    def __init__(self, label: str, log: list[str], contract: StackContract | None = None) -> None:
        self.label = label
        self.log = log
        if contract is not None:
            self.stack_contract = contract

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        self.log.append(self.label)


class Audit(Named):
    """A class named for reference by `before=` / `after=`."""


class Cache(Named):
    pass


async def run_order(factory: OrchestratorFactory, middleware: list[Any]) -> list[str]:
    log: list[str] = []
    for item in middleware:
        (item.middleware if hasattr(item, "contract") else item).log = log
    await factory(lambda request: "ok", middleware=middleware).execute("hi")
    return log


async def test_without_declarations_registration_order_is_the_order(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    stack = [Named(name, []) for name in "abc"]
    assert await run_order(orchestrator_factory, stack) == ["a", "b", "c"]


async def test_outermost_and_innermost_move_and_keep_their_own_order(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    stack = [
        Named("a", []),
        place(Named("in-1", []), position="innermost"),
        Named("b", []),
        place(Named("out-1", []), position="outermost"),
        place(Named("out-2", []), position="outermost"),
        place(Named("in-2", []), position="innermost"),
        Named("c", []),
    ]
    assert await run_order(orchestrator_factory, stack) == [
        "out-1",
        "out-2",
        "a",
        "b",
        "c",
        "in-1",
        "in-2",
    ]


async def test_before_and_after_a_named_middleware(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    stack = [
        Audit("audit", []),
        Cache("cache", []),
        place(Named("outside-cache", []), before="Cache"),
        place(Named("inside-audit", []), after="Audit"),
        Named("last", []),
    ]
    order = await run_order(orchestrator_factory, stack)
    assert order.index("outside-cache") < order.index("cache")
    assert order.index("audit") < order.index("inside-audit")
    # Moved only as far as needed: inside-audit already was inside Audit where it was added.
    assert order == ["audit", "outside-cache", "cache", "inside-audit", "last"]


async def test_a_declared_contract_on_the_class_works_like_place(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    stack = [
        Named("a", []),
        Named("first", [], StackContract(name="first", position="outermost")),
        Named("named", [], StackContract(name="special", after="first")),
        Named("before-special", [], StackContract(before=["special"])),
    ]
    assert await run_order(orchestrator_factory, stack) == [
        "first",
        "a",
        "before-special",
        "named",
    ]


async def test_an_explicit_before_wins_over_a_position(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    stack = [
        place(Audit("audit", []), position="outermost"),
        place(Named("guard", []), before="Audit"),
    ]
    assert await run_order(orchestrator_factory, stack) == ["guard", "audit"]


async def test_a_function_middleware_is_named_by_its_function_name(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    log: list[str] = []

    async def logging_tools(call: Any, next: Any) -> Any:
        return await next(call)

    stack = [Named("a", log), logging_tools, place(Named("b", log), before="logging_tools")]
    orchestrator = orchestrator_factory(lambda request: "ok", middleware=stack)
    assert [type(m).__name__ for m in orchestrator.middleware] == ["Named", "Named", "function"]
    assert orchestrator.middleware[2] is logging_tools


async def test_a_missing_reference_fails_the_build_naming_both() -> None:
    orchestrator = Orchestrator(
        _agent(), middleware=[Audit("audit", []), place(Named("x", []), before="Cahce")]
    )
    with pytest.raises(ConfigError, match=r"'Named' must go before 'Cahce'.*names: Audit, Named"):
        await orchestrator.execute("hi")
    with pytest.raises(ConfigError, match="Cahce"):
        orchestrator.explain()


async def test_a_cycle_fails_the_build_naming_the_middleware_in_it() -> None:
    orchestrator = Orchestrator(
        _agent(),
        middleware=[
            place(Named("x", []), name="x", before="y"),
            place(Named("y", []), name="y", before="z"),
            place(Named("z", []), name="z", before="x"),
            Named("free", []),
        ],
    )
    with pytest.raises(ConfigError, match=r"cycle among 'x', 'y', 'z'"):
        await orchestrator.execute("hi")


async def test_a_reference_added_later_with_use_resolves_on_the_next_build() -> None:
    log: list[str] = []
    orchestrator = Orchestrator(_agent(), middleware=[place(Named("x", log), after="Audit")])
    with pytest.raises(ConfigError, match="no middleware of that name"):
        await orchestrator.execute("hi")
    orchestrator.use(Audit("audit", log))
    await orchestrator.execute("hi")
    assert log == ["audit", "x"]


def bad(value: object) -> Any:
    """A value of the wrong type, as an untyped caller (YAML, a plugin) would pass."""
    return value


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StackContract(position=bad("middle")), "position must be 'outermost'"),
        (lambda: StackContract(name=""), "name must be a non-empty string"),
        (lambda: StackContract(before=bad([3])), "before must be a middleware name"),
        (lambda: StackContract(after=[""]), "after must be a middleware name"),
        (lambda: StackContract(mandatory=bad("yes")), "mandatory must be a bool"),
        (lambda: StackContract(fail_open=bad(1)), "fail_open must be a bool"),
        (lambda: place(place(Named("a", [])), position="outermost"), "placed already"),
    ],
)
def test_bad_contracts_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_a_stack_contract_attribute_of_the_wrong_type_is_refused() -> None:
    class Odd(Named):
        def __init__(self, label: str, log: list[str]) -> None:
            super().__init__(label, log)
            self.stack_contract: Any = {"position": "outermost"}

    with pytest.raises(ConfigError, match="stack_contract must be a StackContract"):
        Orchestrator(_agent(), middleware=[Odd("odd", [])])


def _agent() -> Any:
    from onionskin import Agent

    return Agent("assistant", model=ScriptedModel(lambda request: "ok"))
