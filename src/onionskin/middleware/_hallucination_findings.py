"""What the hallucination guard finds in a model response or a tool call, and how it says so.

A response is inspected against its request: tool calls against `request.tools` (names and
JSON schemas), and asserted values against the sources in `request.messages`. A tool call
alone is inspected against the tool it resolved to: it has no sources, so no values.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import pydantic

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall
from onionskin.core.messages import Message, Part, ToolCallPart, ToolReturnPart
from onionskin.middleware._claims import ClaimExtractor, Sources
from onionskin.middleware._schema_check import check_arguments
from onionskin.middleware._signature_cache import signature_of
from onionskin.middleware._signature_check import error_paths
from onionskin.runtime.tool import UnknownTool

ClaimPlace: TypeAlias = Literal["answer", "tool_arguments"]
CLAIM_PLACES: tuple[ClaimPlace, ...] = ("answer", "tool_arguments")
FindingKind: TypeAlias = Literal["unknown_tool", "invalid_arguments", "unsupported_value"]
FINDING_KINDS: tuple[FindingKind, ...] = ("unknown_tool", "invalid_arguments", "unsupported_value")
"""Most serious first: a call of a tool that does not exist makes its arguments moot."""

_ADVICE = (
    "Call only the tools you were given, with arguments that fit their schemas, and state "
    "only ids, URLs, numbers and names that appear in the conversation or in tool results: "
    "call a tool to look a value up, or say that you do not know it."
)
_NOT_RUN = "Not run: another tool call in the same response was refused. Call it again if needed."


@dataclass(frozen=True, slots=True, kw_only=True)
class HallucinationFinding:
    """One thing the guard found: its kind, the tool call (or the answer), and the values."""

    kind: FindingKind
    tool_name: str = ""
    """The tool called, or "" for a final answer."""
    values: tuple[str, ...] = ()
    """The argument problems (`"path: message"`) or the unsupported values, as written."""
    call_id: str = ""
    """The tool call's id, when the model gave one."""

    def describe(self) -> str:
        """The finding in one sentence, for logs, errors and the corrective message."""
        listed = "; ".join(self.values)
        where = f"the arguments of tool {self.tool_name!r}" if self.tool_name else "the answer"
        if self.kind == "unknown_tool":
            return f"tool {self.tool_name!r} does not exist"
        if self.kind == "invalid_arguments":
            return f"{where} do not fit its schema: {listed}"
        return f"{where} state values found in no message or tool result: {listed}"


def _problems(problems: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(f"{path or '(arguments)'}: {message}" for path, message in problems)


def _source_texts(messages: Sequence[Message]) -> Iterator[str]:
    # Lazy: `Sources` reads it only for a claim to check; most responses never walk the history.
    yield from (message.text for message in messages if message.role in ("user", "system"))
    for message in messages:
        yield from (part.content for part in message.parts if isinstance(part, ToolReturnPart))


def _answer_value(text: str) -> object:
    """A JSON answer as its value (its keys are no claims), any other answer as its text."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


class Detector:
    """Inspects responses and tool calls for the checks a guard's config turned on."""

    __slots__ = ("check_args", "check_tools", "claims", "places")

    def __init__(
        self,
        *,
        check_tools: bool,
        check_args: bool,
        places: Collection[ClaimPlace],
        claims: ClaimExtractor,
    ) -> None:
        self.check_tools = check_tools
        self.check_args = check_args
        self.places = frozenset(places)
        self.claims = claims

    def inspect(self, request: ModelRequest, response: ModelResponse) -> list[HallucinationFinding]:
        """What is wrong with `response` to `request`, most serious first ([] when nothing)."""
        places = self.places
        sources = Sources(_source_texts(request.messages) if places else ())
        calls = response.message.tool_calls
        if not calls:
            if "answer" not in places:
                return []
            return self._unsupported(_answer_value(response.message.text), sources, None)
        schemas = {tool.name: tool.parameters for tool in request.tools}
        findings: list[HallucinationFinding] = []
        for part in calls:
            findings += self._check_requested(part, schemas)
            if "tool_arguments" in places:
                findings += self._unsupported(dict(part.args), sources, part)
        return sorted(findings, key=lambda finding: FINDING_KINDS.index(finding.kind))

    def inspect_call(self, call: ToolCall) -> list[HallucinationFinding]:
        """What is wrong with a tool call: an unknown tool or arguments its function refuses."""
        tool, name, call_id = call.tool, call.tool_name, call.call_id
        if tool is None or isinstance(tool, UnknownTool):
            if not self.check_tools:
                return []
            return [HallucinationFinding(kind="unknown_tool", tool_name=name, call_id=call_id)]
        function = getattr(tool, "function", None)
        if not self.check_args or not callable(function):
            return []
        signature = signature_of(function)
        if signature.quick.admits(call.args, call.kwargs):  # fast path (guard overhead)
            return []
        try:
            signature.validate(call.args, call.kwargs, strict=False)
        except (TypeError, pydantic.ValidationError) as error:
            problems = _problems(error_paths(error))
            return [
                HallucinationFinding(
                    kind="invalid_arguments", tool_name=name, values=problems, call_id=call_id
                )
            ]
        return []

    def _check_requested(
        self, part: ToolCallPart, schemas: Mapping[str, Mapping[str, Any]]
    ) -> list[HallucinationFinding]:
        name, call_id = part.tool_name, part.call_id
        if name not in schemas:
            if not self.check_tools:
                return []
            return [HallucinationFinding(kind="unknown_tool", tool_name=name, call_id=call_id)]
        problems = check_arguments(schemas[name], part.args) if self.check_args else []
        if not problems:
            return []
        return [
            HallucinationFinding(
                kind="invalid_arguments",
                tool_name=name,
                values=_problems(problems),
                call_id=call_id,
            )
        ]

    def _unsupported(
        self, value: object, sources: Sources, part: ToolCallPart | None
    ) -> list[HallucinationFinding]:
        claims = sources.unsupported(self.claims.from_value(value))
        if not claims:
            return []
        return [
            HallucinationFinding(
                kind="unsupported_value",
                tool_name="" if part is None else part.tool_name,
                values=tuple(claim.text for claim in claims),
                call_id="" if part is None else part.call_id,
            )
        ]


def correction(
    request: ModelRequest, response: ModelResponse, findings: list[HallucinationFinding]
) -> list[Message]:
    """The rejected response, and what the model reads about it before it tries again."""
    calls = response.message.tool_calls
    if not calls:
        listed = "\n".join(f"- {finding.describe()}" for finding in findings)
        text = f"Your answer was not accepted:\n{listed}\n{_ADVICE} Answer again."
        return [response.message, Message.user(text)]
    tools = ", ".join(tool.name for tool in request.tools) or "none"
    # Every tool call gets an answer: provider protocols refuse a call left without one.
    parts: list[Part] = []
    for call in calls:
        own = [
            f.describe()
            for f in findings
            if f.call_id == call.call_id and f.tool_name == call.tool_name
        ]
        content = _NOT_RUN
        if own:
            content = f"Refused: {'; '.join(own)}. The tools you can call: {tools}. {_ADVICE}"
        parts.append(ToolReturnPart(call.tool_name, content, call.call_id, is_error=True))
    return [response.message, Message("tool", parts)]
