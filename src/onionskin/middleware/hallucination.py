"""`HallucinationMiddleware`: catch tools that do not exist, bad arguments and made-up values.

Model level, on every response: a tool call naming a tool not in `request.tools`, arguments
outside that tool's JSON schema, and ids, URLs, numbers or quoted names, in tool arguments
or in a final answer, that occur in none of the sources (the user's and system's messages
and the tool results in `request.messages`; the model's own earlier messages are no
source). Tool level: a call whose tool does not exist (`call.tool` is None or the runtime's
`UnknownTool`), or whose arguments its function refuses (the check a runtime `Tool` makes).
Values are checked at model level only: a lone tool call has no sources to check against.

Actions: "block" asks the model again with a corrective message, at most `max_retries`
times, then raises `HallucinationError`; at tool level it raises at once, since the
model-level check has already had its chance to correct the model. "warn" logs a warning
and records each finding once in `current_context().guard_state["hallucination"]`; "log"
logs at info. Both let the call through.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import current_context_or_none
from onionskin.core.errors import ConfigError, HallucinationError
from onionskin.middleware._claims import CLAIM_KINDS, ClaimExtractor, ClaimKind
from onionskin.middleware._config import (
    require_bool,
    require_choice,
    require_int,
    require_positive,
)
from onionskin.middleware._hallucination_findings import (
    CLAIM_PLACES,
    ClaimPlace,
    Detector,
    HallucinationFinding,
    correction,
)

HallucinationAction: TypeAlias = Literal["block", "warn", "log"]
"""What a finding does: refuse (and correct the model), or log and let it through."""
GUARD = "hallucination"
"""The guard's name: its key in `RunContext.guard_state` and its errors' `guard`."""
_OWNER = "HallucinationConfig"
logger = logging.getLogger("onionskin.guards.hallucination")

__all__ = [
    "GUARD",
    "HallucinationAction",
    "HallucinationConfig",
    "HallucinationFinding",
    "HallucinationMiddleware",
]


def _require_subset(field: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, tuple) or not set(value) <= set(choices):
        listed = ", ".join(repr(choice) for choice in choices)
        raise ConfigError(f"{_OWNER}.{field} must be a tuple of {listed}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HallucinationConfig:
    """What counts as a hallucination, and what the guard does about it."""

    action: HallucinationAction = "block"
    """`"block"` corrects the model or refuses the call; `"warn"` and `"log"` let it through."""
    check_tools: bool = True
    """Flag calls of tools that do not exist."""
    check_arguments: bool = True
    """Flag tool arguments that do not fit the tool's schema or signature."""
    claim_kinds: tuple[ClaimKind, ...] = CLAIM_KINDS
    """Which asserted values must occur in a source: "id", "url", "number", "name"."""
    claims_in: tuple[ClaimPlace, ...] = CLAIM_PLACES
    """Where values are checked: "answer" (final answers), "tool_arguments"; () for nowhere."""
    ignore_numbers_up_to: float = 10
    """Numbers no larger than this are too common to check (counts, ranks, ratings)."""
    max_retries: int = 1
    """Corrective model calls before "block" raises `HallucinationError`."""

    def __post_init__(self) -> None:
        require_choice(_OWNER, "action", self.action, ("block", "warn", "log"))
        require_bool(_OWNER, "check_tools", self.check_tools)
        require_bool(_OWNER, "check_arguments", self.check_arguments)
        _require_subset("claim_kinds", self.claim_kinds, CLAIM_KINDS)
        _require_subset("claims_in", self.claims_in, CLAIM_PLACES)
        require_positive(_OWNER, "ignore_numbers_up_to", self.ignore_numbers_up_to, allow_zero=True)
        require_int(_OWNER, "max_retries", self.max_retries, minimum=0)


def _error(findings: Sequence[HallucinationFinding], retries: int | None) -> HallucinationError:
    """The error for `findings`: the most serious kind (they come sorted) and its values."""
    kind = findings[0].kind
    values = tuple(
        value for f in findings if f.kind == kind for value in f.values or (f.tool_name,)
    )
    listed = "; ".join(finding.describe() for finding in findings)
    if retries is None:
        message = (
            f"the hallucination guard refused the tool call: {listed}. Call a tool that exists "
            "with arguments its signature accepts"
        )
    else:
        message = (
            f"the model's response still hallucinated after {retries} corrective retries: "
            f"{listed}. Give the model the tools and data it needs, raise max_retries, or use "
            "action='warn'"
        )
    return HallucinationError(message, kind=kind, values=values)


class HallucinationMiddleware:
    """Catches unknown tools, invalid arguments and unsupported values; blocks, warns or logs."""

    def __init__(self, config: HallucinationConfig | None = None) -> None:
        if config is not None and not isinstance(config, HallucinationConfig):
            raise ConfigError(f"config must be a HallucinationConfig, got {config!r}")
        self.config = config = config or HallucinationConfig()
        self._detector = Detector(
            check_tools=config.check_tools,
            check_args=config.check_arguments,
            places=config.claims_in,
            claims=ClaimExtractor(config.claim_kinds, ignore_up_to=config.ignore_numbers_up_to),
        )

    def inspect(self, request: ModelRequest, response: ModelResponse) -> list[HallucinationFinding]:
        """What this guard finds in `response` to `request`, most serious first."""
        return self._detector.inspect(request, response)

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Call the model; while its response hallucinates, act (and with "block", retry)."""
        messages = list(request.messages)
        current = request
        retries = 0
        while True:
            response = await next(current)
            findings = self._detector.inspect(request, response)
            if not findings:
                return response
            if self.config.action != "block":
                self._report(findings)
                return response
            if retries == self.config.max_retries:
                raise _error(findings, retries)
            retries += 1
            messages += correction(request, response, findings)
            current = dataclasses.replace(request, messages=list(messages))

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Refuse (or report) a call of an unknown tool or with arguments its tool refuses."""
        findings = self._detector.inspect_call(call)
        if findings:
            if self.config.action == "block":
                raise _error(findings, None)
            self._report(findings)
        return await next(call)

    def _report(self, findings: list[HallucinationFinding]) -> None:
        warn = self.config.action == "warn"
        ctx = current_context_or_none()
        recorded: list[HallucinationFinding] | None = None
        if warn and ctx is not None:
            recorded = ctx.guard_state.setdefault(GUARD, [])
        for finding in findings:
            if recorded is not None:
                # A call seen at model level is seen again at tool level: record it once.
                if any(_same(finding, seen) for seen in recorded):
                    continue
                recorded.append(finding)
            logger.log(
                logging.WARNING if warn else logging.INFO,
                "hallucination guard: %s",
                finding.describe(),
            )


def _same(finding: HallucinationFinding, seen: HallucinationFinding) -> bool:
    if finding.call_id and finding.call_id == seen.call_id:
        return (finding.kind, finding.tool_name) == (seen.kind, seen.tool_name)
    return finding == seen
